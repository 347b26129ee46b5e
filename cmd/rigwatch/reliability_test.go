package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/localch"
	"github.com/rigwatch/rigwatch/internal/localkafka"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/store"
)

type produced struct {
	want map[string]float64
	err  error
}

func produceAsync(ctx context.Context, brokers []string, l load) chan produced {
	ch := make(chan produced, 1)
	go func() { w, err := produce(ctx, brokers, l); ch <- produced{w, err} }()
	return ch
}

// TestClickHouseOutage stops ClickHouse for 30 s mid-ingest: serve keeps
// running, reports not ready, commits no offset while nothing can be
// stored, and once the server is back stores everything, to the reading.
func TestClickHouseOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	srv, err := localch.Start(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	db := testenv.DatabaseName()
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	l := load{meters: 300, steps: 400, seed: 2, pause: 150 * time.Millisecond}
	prod := produceAsync(ctx, brokers, l)
	p := startServe(t, brokers, srv.Addr, db, "serve")
	if !waitFor(time.Minute, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Fatal("serve never became ready")
	}
	st, err := store.Open(ctx, store.Config{Addr: srv.Addr, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !waitFor(time.Minute, func() bool { tot, err := st.ReadingTotals(ctx); return err == nil && tot.Rows > 0 }) {
		t.Fatal("nothing stored before the outage")
	}
	st.Close()

	srv.Stop()
	outage := time.Now()
	if !waitFor(15*time.Second, func() bool { return p.status("/readyz") == http.StatusServiceUnavailable }) {
		t.Error("/readyz did not report not-ready while ClickHouse was down")
	}
	// Commits of batches stored just before the stop may still land; after
	// that, nothing may be committed until ClickHouse is back.
	time.Sleep(3 * time.Second)
	before, err := committed(ctx, brokers)
	if err != nil {
		t.Fatal(err)
	}
	for time.Since(outage) < 30*time.Second {
		time.Sleep(2 * time.Second)
		now, err := committed(ctx, brokers)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(now) != fmt.Sprint(before) {
			t.Fatalf("offsets committed while ClickHouse was down: %v -> %v", before, now)
		}
		if !p.alive() {
			t.Fatal("serve exited during the outage")
		}
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	res := <-prod
	if res.err != nil {
		t.Fatal(res.err)
	}
	caughtUp(t, ctx, brokers)
	if !waitFor(30*time.Second, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Error("/readyz did not recover")
	}
	sigterm(p)
	if err := <-p.done; err != nil {
		t.Errorf("serve exit: %v", err)
	}
	st, err = store.Open(ctx, store.Config{Addr: srv.Addr, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkStored(t, ctx, st, res.want, l.steps)
}

// TestBrokerRestart stops the embedded broker mid-ingest and starts it again
// on the same port with its data directory kept: serve rides it out and
// loses nothing.
func TestBrokerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ch := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	dir := t.TempDir()
	port := freePort(t)
	br, err := localkafka.Start(dir, port, allTopics()...)
	if err != nil {
		t.Fatal(err)
	}
	brokers := br.Addrs()
	first := load{meters: 200, steps: 200, seed: 3, pause: 20 * time.Millisecond}
	if _, err := produce(ctx, brokers, first); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, brokers, ch, db, "serve")
	st, err := store.Open(ctx, store.Config{Addr: ch, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !waitFor(time.Minute, func() bool { tot, err := st.ReadingTotals(ctx); return err == nil && tot.Rows > 0 }) {
		t.Fatal("nothing stored before the broker restart")
	}
	if p.status("/readyz") != http.StatusOK {
		t.Fatal("not ready before the broker went away")
	}
	br.Close()
	// Fetches fail: not ready, still running.
	down := time.Now()
	if !waitFor(45*time.Second, func() bool { return p.status("/readyz") == http.StatusServiceUnavailable }) {
		t.Error("/readyz did not report not-ready while the broker was down")
	}
	t.Logf("not ready %.1fs after the broker went away: %s", time.Since(down).Seconds(), p.body("/readyz"))
	if !p.alive() {
		t.Fatal("serve exited when the broker went away")
	}
	br, err = localkafka.Start(dir, port, allTopics()...)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	// The second load repeats the first (same seed: same values) and goes
	// on to twice as many steps, so it also redelivers what was stored.
	second := load{meters: 200, steps: 400, seed: 3, pause: 20 * time.Millisecond}
	want2, err := produce(ctx, brokers, second)
	if err != nil {
		t.Fatal(err)
	}
	caughtUp(t, ctx, brokers)
	if !waitFor(time.Minute, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Errorf("/readyz did not recover after the broker came back: %s", p.body("/readyz"))
	}
	sigterm(p)
	if err := <-p.done; err != nil {
		t.Errorf("serve exit: %v", err)
	}
	checkStored(t, ctx, st, want2, second.steps)
}

// TestSIGTERMUnderLoad stops serve with SIGTERM while readings pour in: it
// flushes, commits and exits 0 promptly; a restarted serve completes the
// load and nothing counts twice.
func TestSIGTERMUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ch := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	l := load{meters: 500, steps: 400, seed: 4, pause: 30 * time.Millisecond}
	prod := produceAsync(ctx, brokers, l)
	st, err := store.Open(ctx, store.Config{Addr: ch, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := startServe(t, brokers, ch, db, "serve")
	if !waitFor(time.Minute, func() bool { tot, err := st.ReadingTotals(ctx); return err == nil && tot.Rows > 20000 }) {
		t.Fatal("nothing stored")
	}
	start := time.Now()
	sigterm(p)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("serve exited with %v on SIGTERM, want status 0", err)
		}
		t.Logf("serve stopped %.1fs after SIGTERM", time.Since(start).Seconds())
	case <-time.After(45 * time.Second):
		t.Fatal("serve did not stop within 45s of SIGTERM")
	}
	p = startServe(t, brokers, ch, db, "serve-again")
	res := <-prod
	if res.err != nil {
		t.Fatal(res.err)
	}
	caughtUp(t, ctx, brokers)
	sigterm(p)
	<-p.done
	checkStored(t, ctx, st, res.want, l.steps)
}

// TestTwoConsumersOneDies runs two serve processes in one consumer group;
// the one running detection is killed: the other takes over its partitions
// and detection, and nothing is lost.
func TestTwoConsumersOneDies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ch := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	l := load{meters: 400, steps: 400, seed: 5, pause: 2 * time.Second} // about 35 s, so the kill lands mid-stream
	prod := produceAsync(ctx, brokers, l)
	a := startServe(t, brokers, ch, db, "serve-a", "--detect-every", "500ms")
	b := startServe(t, brokers, ch, db, "serve-b", "--detect-every", "500ms")
	st, err := store.Open(ctx, store.Config{Addr: ch, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var leader, survivor *proc
	if !waitFor(time.Minute, func() bool {
		for _, p := range []*proc{a, b} {
			if logHas(p, "this process runs detection") {
				leader = p
			}
		}
		return leader != nil
	}) {
		t.Fatal("neither process took up detection")
	}
	survivor = map[*proc]*proc{a: b, b: a}[leader]
	if !waitFor(time.Minute, func() bool { tot, err := st.ReadingTotals(ctx); return err == nil && tot.Rows > 20000 }) {
		t.Fatal("nothing stored")
	}
	if !waitFor(time.Minute, func() bool { return settled(ctx, brokers, 2) }) {
		t.Fatal("the two processes' consumer groups never settled")
	}
	_ = leader.cmd.Process.Signal(syscall.SIGKILL)
	<-leader.done
	killed := time.Now()
	res := <-prod
	if res.err != nil {
		t.Fatal(res.err)
	}
	caughtUp(t, ctx, brokers)
	t.Logf("survivor caught up %.1fs after the detecting process was killed", time.Since(killed).Seconds())
	// The last readings end at step 400; detection must reach the last
	// whole hour before the lateness allowance.
	end := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(l.steps) * 15 * time.Minute)
	upTo := hourBefore(end.Add(-15 * time.Minute))
	if !waitFor(2*time.Minute, func() bool {
		return metric(survivor.http, "rigwatch_detect_event_time_seconds") >= float64(upTo.Unix())
	}) {
		t.Errorf("the survivor did not take over detection (event time %v, want %v)", metric(survivor.http, "rigwatch_detect_event_time_seconds"), upTo.Unix())
	}
	if !survivor.alive() {
		t.Fatal("the surviving serve exited")
	}
	sigterm(survivor)
	<-survivor.done
	checkStored(t, ctx, st, res.want, l.steps)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	n, _ := strconv.Atoi(p)
	return n
}
