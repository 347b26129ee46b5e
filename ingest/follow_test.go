package ingest_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/localkafka"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
)

// TestFollowerSeesEveryPartition: a follower reads every partition of the
// registry topics outside any group, from the given start offsets, and
// applies what the consumers would accept (tombstones included, rejects
// skipped); Reached tells when it has caught up with the topics' ends.
func TestFollowerSeesEveryPartition(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	br := testenv.Broker(t, schemas.Licenses.Topic(), schemas.Meters.Topic(), schemas.Rigs.Topic())
	brokers := br.Addrs()
	w := ingest.NewWriter(brokers, schemas.Rigs.Topic(), nil)
	defer w.Close()
	rig := func(id string, at int) kafka.Message {
		return kafka.Message{Key: []byte(id), Value: []byte(fmt.Sprintf(`{"rig_id":%q,"serial":"S-%s","model":"Antminer S19","rated_power_w":3250,"operator_id":"OP-1","license_id":"L-1","site_id":"SITE-1","status":"active","updated_at":"2025-10-01T%02d:00:00Z"}`, id, id, at))}
	}
	var early []kafka.Message
	for i := 0; i < 60; i++ {
		early = append(early, rig(fmt.Sprintf("R%03d", i), 1))
	}
	if err := w.WriteMessages(ctx, early...); err != nil {
		t.Fatal(err)
	}
	ends, err := ingest.EndOffsets(ctx, brokers, nil, schemas.Rigs.Topic())
	if err != nil {
		t.Fatal(err)
	}
	parts := 0
	for _, e := range ends {
		if e > 0 {
			parts++
		}
	}
	if parts < 4 {
		t.Fatalf("the keys reached %d partitions; want most of %d", parts, len(ends))
	}
	// Start after the first 60 on every partition but one: as if they
	// had been loaded from storage.
	start := ingest.Offsets{}
	skipped := -1
	for p, e := range ends {
		if skipped < 0 && e > 0 {
			skipped = p
			continue
		}
		start[p] = e
	}

	var mu sync.Mutex
	got := map[string]schemas.Rig{}
	deleted := map[string]bool{}
	apply := func(b *schemas.Batch) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range b.Rigs {
			if r.Deleted {
				deleted[r.RigID] = true
				continue
			}
			got[r.RigID] = r
		}
		if len(b.Rejects) > 0 {
			t.Errorf("rejects handed to the hook: %v", b.Rejects)
		}
	}
	f, err := ingest.NewFollower(ingest.FollowerConfig{Brokers: brokers, Streams: []schemas.Stream{schemas.Rigs},
		Start: map[schemas.Stream]ingest.Offsets{schemas.Rigs: start}}, apply, nil)
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(fctx) }()

	later := []kafka.Message{{Key: []byte("R001")}, {Key: []byte("bad"), Value: []byte(`{"rig_id":"bad"}`)}}
	for i := 100; i < 140; i++ {
		later = append(later, rig(fmt.Sprintf("R%03d", i), 2))
	}
	if err := w.WriteMessages(ctx, later...); err != nil {
		t.Fatal(err)
	}
	ends, err = ingest.EndOffsets(ctx, brokers, nil, schemas.Rigs.Topic())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !f.Reached(schemas.Rigs, ends) {
		if time.Now().After(deadline) {
			t.Fatal("the follower never reached the topic's end")
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	for i := 100; i < 140; i++ {
		if _, ok := got[fmt.Sprintf("R%03d", i)]; !ok {
			t.Errorf("R%03d, produced later, not applied", i)
		}
	}
	if !deleted["R001"] {
		t.Error("the tombstone of R001 not applied")
	}
	early0 := 0
	for i := 0; i < 60; i++ {
		if _, ok := got[fmt.Sprintf("R%03d", i)]; ok {
			early0++
		}
	}
	if early0 == 0 || early0 == 60 {
		t.Errorf("%d of the early rigs applied: want exactly those of partition %d (started at its first offset)", early0, skipped)
	}
	if _, ok := got["bad"]; ok {
		t.Error("a record the consumers reject was applied")
	}
	mu.Unlock()
	if err := f.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestTailNotReadyWhileBrokerDown: fetches that fail for longer than the
// grace show in Ready, and stop showing once the broker is back.
func TestTailNotReadyWhileBrokerDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	port := freePort(t)
	br, err := localkafka.Start(dir, port, "t.tail")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { br.Close() }()
	tl, err := ingest.NewTail(ingest.TailConfig{Brokers: br.Addrs(), Topics: []string{"t.tail"}, Grace: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx, func([]kafka.Message) error { return nil }) }()
	time.Sleep(2 * time.Second)
	if err := tl.Ready(); err != nil {
		t.Fatalf("Ready with the broker up: %v", err)
	}
	br.Close()
	if !waitUntil(30*time.Second, func() bool { return tl.Ready() != nil }) {
		t.Fatal("Ready never reported the broker down")
	}
	if br, err = localkafka.Start(dir, port, "t.tail"); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(60*time.Second, func() bool { return tl.Ready() == nil }) {
		t.Fatalf("Ready after the broker came back: %v", tl.Ready())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

var waitUntil = testenv.WaitFor

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
