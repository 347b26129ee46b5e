package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/localch"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/store"
)

// tmpfs mounts a tmpfs of size bytes on a fresh directory, unmounted at
// cleanup. It needs root (CI runs as root); a test that cannot have one
// fails rather than skips.
func tmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("cannot mount a %d-byte tmpfs for the disk-full test (needs root): %v %s", size, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Logf("cannot unmount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes path until the file system is full and returns its size.
func fill(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := f.Write(buf)
		n += int64(k)
		if errors.Is(err, syscall.ENOSPC) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(buf) > 4096 && n > 1<<30 {
			t.Fatal("the file system does not fill up")
		}
	}
}

// TestClickHouseDiskFull runs serve against a private ClickHouse whose data
// lives on a 64 MB tmpfs, fills the file system mid-ingest (a real "No space
// left on device" from ClickHouse, not a stand-in), then frees it by
// deleting the filler: serve logs a clear error, stays up, reports not
// ready, commits no offset while inserts fail, and afterwards stores
// everything, to the reading.
func TestClickHouseDiskFull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := tmpfs(t, 64<<20)
	srv, err := localch.Start(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	db := testenv.DatabaseName()
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	first := load{meters: 200, steps: 50, seed: 5}
	if _, err := produce(ctx, brokers, first); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, brokers, srv.Addr, db, "serve")
	caughtUp(t, ctx, brokers)
	if !waitFor(time.Minute, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Fatal("serve never became ready")
	}

	filler := filepath.Join(dir, "filler")
	n := fill(t, filler)
	t.Logf("filled the tmpfs with %d MB", n>>20)
	// The rest arrive while the disk is full: the same meters from the same
	// start, so they correct the 50 stored intervals and add 100 more; the
	// corrections must win.
	second := load{meters: 200, steps: 150, seed: 6}
	all, err := produce(ctx, brokers, second)
	if err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool { return p.status("/readyz") == http.StatusServiceUnavailable }) {
		t.Error("/readyz did not report not-ready while ClickHouse could not write")
	}
	before, err := committed(ctx, brokers)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		time.Sleep(2 * time.Second)
		now, err := committed(ctx, brokers)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(now) != fmt.Sprint(before) {
			t.Fatalf("offsets committed while the disk was full: %v -> %v", before, now)
		}
		if !p.alive() {
			t.Fatal("serve exited while the disk was full")
		}
	}
	log, _ := os.ReadFile(p.log)
	if !strings.Contains(string(log), "cannot store batch; retrying without committing") ||
		!strings.Contains(string(log), "No space left on device") && !strings.Contains(string(log), "Not enough space") {
		t.Errorf("serve's log does not say that ClickHouse is out of space:\n%s", tail(log, 3000))
	}
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, "cannot store batch") {
			t.Logf("serve logged: %s", l)
			break
		}
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, ctx, brokers)
	if !waitFor(30*time.Second, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Error("/readyz did not recover after space was freed")
	}
	sigterm(p)
	if err := <-p.done; err != nil {
		t.Errorf("serve exit: %v", err)
	}
	st, err := store.Open(ctx, store.Config{Addr: srv.Addr, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkStored(t, ctx, st, all, second.steps)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
