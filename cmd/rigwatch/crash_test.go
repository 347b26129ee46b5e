package main

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/store"
)

// TestServeSurvivesSIGKILL produces 300,000 readings (1,000,000 under make
// soak), with duplicates and corrections, into the broker while a rigwatch
// serve process is killed with SIGKILL and restarted five times (eight under
// soak). Afterwards the stored distinct readings and every meter's energy
// equal what was produced, to the reading.
func TestServeSurvivesSIGKILL(t *testing.T) {
	ch := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, store.Config{Addr: ch, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	l, kills := load{meters: 500, steps: 600, seed: 1}, 5
	if soak() {
		l, kills = load{meters: 1000, steps: 1000, seed: 1}, 8
	}
	// Production must outlast the kills: each restarted process waits out
	// the dead member's 10 s session before it gets partitions.
	chunks := l.meters * l.steps * 11 / 10 / 10000
	l.pause = time.Duration(kills+2) * 15 * time.Second / time.Duration(chunks)
	type result struct {
		want map[string]float64
		err  error
	}
	produced := make(chan result, 1)
	go func() { w, err := produce(ctx, brokers, l); produced <- result{w, err} }()

	var stored uint64
	for i := 0; i < kills; i++ {
		p := startServe(t, brokers, ch, db, "serve")
		// Kill each process once it has stored something of its own, so
		// that every kill lands mid-ingest.
		if !waitFor(2*time.Minute, func() bool {
			tot, err := st.ReadingTotals(ctx)
			return err == nil && tot.Rows > stored
		}) {
			t.Fatalf("serve %d stored nothing", i)
		}
		if !waitFor(time.Minute, func() bool { return settled(ctx, brokers, 1) }) {
			t.Fatalf("serve %d's consumer groups never settled", i)
		}
		time.Sleep(time.Duration(200+150*i) * time.Millisecond)
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		tot, err := st.ReadingTotals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("killed serve %d with %d readings stored", i, tot.Rows)
		stored = tot.Rows
		if tot.Rows == 0 || tot.Rows >= uint64(l.meters*l.steps) {
			t.Errorf("kill %d did not land mid-ingest: %d of %d readings stored", i, tot.Rows, l.meters*l.steps)
		}
	}
	p := startServe(t, brokers, ch, db, "serve-final")
	// SIGTERM only once it is up: a signal before Go installs its handler
	// kills any process, and proves nothing about shutdown.
	if !waitFor(time.Minute, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Fatal("the last serve never became ready")
	}
	res := <-produced
	if res.err != nil {
		t.Fatalf("cannot produce: %v", res.err)
	}
	caughtUp(t, ctx, brokers)
	sigterm(p)
	if err := <-p.done; err != nil {
		t.Errorf("serve did not exit cleanly on SIGTERM: %v", err)
	}
	checkStored(t, ctx, st, res.want, l.steps)
}
