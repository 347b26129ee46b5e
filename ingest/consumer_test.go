package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// TestConsumerStoresAndRejects runs a consumer against the embedded broker
// and a real ClickHouse: good readings are stored once despite duplicates,
// a correction replaces the value, every bad message lands in the rejects
// table and topic with its partition, offset and reason, and offsets are
// committed.
func TestConsumerStoresAndRejects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := testenv.Store(t)
	topic := "t.readings"
	br := testenv.Broker(t, topic, schemas.RejectsTopic)
	w := ingest.NewWriter(br.Addrs(), topic, nil)
	defer w.Close()

	var msgs []kafka.Message
	want := map[string]float64{}
	for m := 0; m < 20; m++ {
		id := fmt.Sprintf("M%02d", m)
		for i := 0; i < 50; i++ {
			ts := time.Date(2025, 10, 1, 0, 15*(i+1), 0, 0, time.UTC).Format(time.RFC3339)
			kwh := float64(m) + float64(i)/100
			v, _ := json.Marshal(map[string]any{"meter_id": id, "ts": ts, "kwh": kwh})
			msgs = append(msgs, kafka.Message{Key: []byte(id), Value: v})
			if i%10 == 0 { // a duplicate
				msgs = append(msgs, kafka.Message{Key: []byte(id), Value: v})
			}
			want[id] += kwh
		}
	}
	// A correction of M00's first reading.
	msgs = append(msgs, kafka.Message{Key: []byte("M00"), Value: []byte(`{"meter_id":"M00","ts":"2025-10-01T00:15:00Z","kwh":5}`)})
	want["M00"] += 5
	bad := []string{`{"meter_id":"M01","ts":"2025-10-01T00:15:00Z","kwh":-1}`, `{"meter_id":`, `{"meter_id":"M01","ts":"nope","kwh":1}`, "\xff\xfe", `{"meter_id":"M01","ts":"2025-10-01T00:15:00Z","kwh":"x"}`}
	for _, b := range bad {
		msgs = append(msgs, kafka.Message{Key: []byte("M01"), Value: []byte(b)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	rejW := ingest.NewWriter(br.Addrs(), schemas.RejectsTopic, nil)
	defer rejW.Close()
	c, err := ingest.NewConsumer(ingest.ConsumerConfig{Brokers: br.Addrs(), Stream: schemas.Readings, Topic: topic,
		GroupID: "g", FlushInterval: 200 * time.Millisecond, MaxBatch: 300, InsertRows: 600,
		NewInserter: func() ingest.Inserter { return st.Inserter() }}, st, ingest.KafkaRejects{W: rejW}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCaughtUp(t, ctx, c, br.Addrs(), "g", topic, nil)
	if s := c.Stats(); s.Consumed != int64(len(msgs)) || s.Rejected != int64(len(bad)) {
		t.Errorf("stats %+v, want %d consumed, %d rejected", s, len(msgs), len(bad))
	}
	// M00's first reading was 0 kWh, corrected to 5: want counts the 5.
	checkEnergy(t, ctx, st, want, 50)
	reasons, err := st.RejectReasons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantReasons := map[string]uint64{"readings/kwh": 2, "readings/": 2, "readings/ts": 1}
	for k, n := range wantReasons {
		if reasons[k] != n {
			t.Errorf("rejects %s = %d, want %d (all: %v)", k, reasons[k], n, reasons)
		}
	}
	// The rejects topic carries the same rejects, with their source.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: br.Addrs(), Topic: schemas.RejectsTopic, GroupID: "check", StartOffset: kafka.FirstOffset})
	defer r.Close()
	for i := 0; i < len(bad); i++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var rj schemas.Reject
		if err := json.Unmarshal(m.Value, &rj); err != nil {
			t.Fatal(err)
		}
		if rj.Source != topic || rj.Offset < 0 || rj.Reason == "" || rj.RawSize == 0 {
			t.Errorf("reject on topic lacks its source or reason: %+v", rj)
		}
	}
}

// failingFlush is a real store.Inserter whose first n Flushes fail, as an
// insert that ClickHouse refuses at its end would.
type failingFlush struct {
	ingest.Inserter
	fails *atomic.Int32
	n     int32
}

func (f failingFlush) Flush(ctx context.Context) error {
	if f.fails.Add(1) <= f.n {
		f.Inserter.Abort()
		return errors.New("insert refused (test)")
	}
	return f.Inserter.Flush(ctx)
}

// TestConsumerResendsHeldBatches makes the end of the consumer's inserts
// fail: no offset may be committed while they fail, and once they succeed
// every reading held in the failed inserts is stored, exactly.
func TestConsumerResendsHeldBatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := testenv.Store(t)
	topic := "t.resend"
	br := testenv.Broker(t, topic)
	w := ingest.NewWriter(br.Addrs(), topic, nil)
	defer w.Close()
	var msgs []kafka.Message
	want := map[string]float64{}
	for m := 0; m < 10; m++ {
		id := fmt.Sprintf("M%02d", m)
		for i := 0; i < 300; i++ {
			ts := time.Date(2025, 10, 1, 0, 15*(i+1), 0, 0, time.UTC).Format(time.RFC3339)
			kwh := float64(m) + float64(i)/1000
			msgs = append(msgs, kafka.Message{Key: []byte(id), Value: []byte(fmt.Sprintf(`{"meter_id":%q,"ts":%q,"kwh":%g}`, id, ts, kwh))})
			want[id] += kwh
		}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	var fails atomic.Int32
	const refused = 3
	c, err := ingest.NewConsumer(ingest.ConsumerConfig{Brokers: br.Addrs(), Stream: schemas.Readings, Topic: topic,
		GroupID: "g", FlushInterval: 100 * time.Millisecond, MaxBatch: 200, InsertRows: 1000,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		NewInserter: func() ingest.Inserter { return failingFlush{st.Inserter(), &fails, refused} }}, st, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCaughtUp(t, ctx, c, br.Addrs(), "g", topic, func(lag int64) {
		if lag < int64(len(msgs)) && fails.Load() <= refused {
			t.Fatalf("committed %d offsets while every insert failed", int64(len(msgs))-lag)
		}
	})
	if fails.Load() <= refused {
		t.Fatalf("%d flushes, want more than the %d refused", fails.Load(), refused)
	}
	checkEnergy(t, ctx, st, want, 300)
}

// TestConsumersRebalance runs two consumers in one group while readings
// arrive, then stops one: the group rebalances twice (a member joins, a
// member leaves), the survivor takes over every partition, and every
// reading is stored and committed.
func TestConsumersRebalance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := testenv.Store(t)
	topic := "t.rebalance"
	br := testenv.Broker(t, topic)
	w := ingest.NewWriter(br.Addrs(), topic, nil)
	defer w.Close()
	want := map[string]float64{}
	produce := func(from, to int) {
		var msgs []kafka.Message
		for i := from; i < to; i++ {
			id := fmt.Sprintf("M%03d", i%200)
			ts := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i/200+1) * 15 * time.Minute).Format(time.RFC3339)
			kwh := float64(i%997) / 100
			msgs = append(msgs, kafka.Message{Key: []byte(id), Value: []byte(fmt.Sprintf(`{"meter_id":%q,"ts":%q,"kwh":%g}`, id, ts, kwh))})
			want[id] += kwh
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	start := func() (*ingest.Consumer, func()) {
		c, err := ingest.NewConsumer(ingest.ConsumerConfig{Brokers: br.Addrs(), Stream: schemas.Readings, Topic: topic,
			GroupID: "g", FlushInterval: 100 * time.Millisecond, MaxBatch: 500, SessionTimeout: 6 * time.Second,
			NewInserter: func() ingest.Inserter { return st.Inserter() }}, st, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(rctx) }()
		return c, func() {
			stop()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	// stable waits until the group is stable with n members.
	stable := func(n int) {
		t.Helper()
		for {
			dg, err := (&kafka.Client{Addr: kafka.TCP(br.Addrs()...), Timeout: 5 * time.Second}).DescribeGroups(ctx,
				&kafka.DescribeGroupsRequest{GroupIDs: []string{"g"}})
			if err == nil && len(dg.Groups) == 1 && dg.Groups[0].GroupState == "Stable" && len(dg.Groups[0].Members) == n {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("the group never had %d stable members: %v %+v", n, err, dg)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	a, stopA := start()
	produce(0, 20_000)
	b, stopB := start()
	stable(2)
	produce(20_000, 40_000)
	// Both must have a share before one leaves.
	for a.Stats().Consumed == 0 || b.Stats().Consumed == 0 || a.Stats().Consumed+b.Stats().Consumed < 40_000 {
		if ctx.Err() != nil {
			t.Fatalf("the second consumer got no share: %+v, %+v", a.Stats(), b.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopA()
	produce(40_000, 60_000)
	for {
		lag, err := ingest.GroupLag(ctx, br.Addrs(), nil, "g", topic)
		if err == nil && lag == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the survivor did not catch up: lag %d, %v; %+v", lag, err, b.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopB()
	checkEnergy(t, ctx, st, want, 300)
}

// runCaughtUp runs c until its group has committed everything on topic,
// calling seen (if set) with the group's lag at every look, then stops it.
func runCaughtUp(t *testing.T, ctx context.Context, c *ingest.Consumer, brokers []string, group, topic string, seen func(lag int64)) {
	t.Helper()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	for {
		lag, err := ingest.GroupLag(ctx, brokers, nil, group, topic)
		if err == nil && seen != nil {
			seen(lag)
		}
		if err == nil && lag == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("consumer did not catch up: lag %d, %v", lag, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// checkEnergy compares every meter's stored readings and energy with want.
func checkEnergy(t *testing.T, ctx context.Context, st *store.Store, want map[string]float64, rows uint64) {
	t.Helper()
	got, err := st.MeterEnergy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for id, kwh := range want {
		if got[id].Rows != rows || fmt.Sprintf("%.6f", got[id].KWh) != fmt.Sprintf("%.6f", kwh) {
			t.Errorf("%s: stored %d readings %.6f kWh, want %d %.6f", id, got[id].Rows, got[id].KWh, rows, kwh)
		}
	}
}
