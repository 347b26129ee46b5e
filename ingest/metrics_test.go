package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
)

// gatedWriter holds the first batch until open is closed.
type gatedWriter struct {
	w    Writer
	open chan struct{}
}

func (g gatedWriter) WriteBatch(ctx context.Context, b *schemas.Batch) error {
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.w.WriteBatch(ctx, b)
}

// TestMetricsConsumer runs a consumer against the embedded broker and a real
// ClickHouse and checks what /metrics says about it: while the first insert
// is held, a partition taken but not committed shows its whole length as
// lag; then every message is counted as consumed, the good ones as stored,
// and the lag of every partition goes down to 0 once all is committed.
func TestMetricsConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := testenv.Store(t)
	topic := "t.metrics.purchases"
	br := testenv.Broker(t, topic)
	w := NewWriter(br.Addrs(), topic, nil)
	defer w.Close()

	const good, bad = 300, 3
	var msgs []kafka.Message
	for i := 0; i < good; i++ {
		id := fmt.Sprintf("TX%04d", i)
		v, _ := json.Marshal(map[string]any{"tx_id": id, "operator_id": "OP1", "mwh": 0.5, "ts": "2025-10-01T00:00:00Z"})
		msgs = append(msgs, kafka.Message{Key: []byte(id), Value: v})
	}
	for i := 0; i < bad; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("BAD%d", i)), Value: []byte(`{"tx_id":`)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	ends, err := EndOffsets(ctx, br.Addrs(), nil, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range ends {
		if end == 0 {
			t.Fatalf("partition %d got no messages; the lag check would prove nothing", p)
		}
	}

	stream := string(schemas.Purchases)
	gate := make(chan struct{})
	consumed0 := testutil.ToFloat64(consumedRecords.WithLabelValues(stream))
	stored0 := testutil.ToFloat64(storedRecords.WithLabelValues(stream))
	c, err := NewConsumer(ConsumerConfig{Brokers: br.Addrs(), Stream: schemas.Purchases, Topic: topic,
		GroupID: "g", FlushInterval: 100 * time.Millisecond, MaxBatch: 50}, gatedWriter{st, gate}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()

	// The lag series as /metrics serves them, read from the default
	// registry so that a series the consumer never set does not count.
	lags := func() map[string]float64 {
		out := map[string]float64{}
		mfs, err := prometheus.DefaultGatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "rigwatch_ingest_consumer_lag" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, lp := range m.GetLabel() {
					labels[lp.GetName()] = lp.GetValue()
				}
				if labels["topic"] == topic {
					out[labels["partition"]] = m.GetGauge().GetValue()
				}
			}
		}
		return out
	}
	// Nothing is committed while the gate is shut, so the first partitions
	// taken show as lag everything they hold.
	for held := false; !held; {
		for p, l := range lags() {
			n, _ := strconv.Atoi(p)
			if l != float64(ends[n]) {
				t.Fatalf("partition %s: lag %v with nothing committed, want its end offset %d", p, l, ends[n])
			}
			held = true
		}
		if ctx.Err() != nil {
			t.Fatal("the consumer set no lag before its first insert")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(gate)
	caughtUp := func() bool {
		if testutil.ToFloat64(consumedRecords.WithLabelValues(stream))-consumed0 != float64(len(msgs)) {
			return false
		}
		l := lags()
		if len(l) != len(ends) {
			return false
		}
		for _, l := range l {
			if l != 0 {
				return false
			}
		}
		return c.Stats().Commits > 0
	}
	for !caughtUp() {
		if ctx.Err() != nil {
			t.Fatalf("consumer did not catch up: consumed %v of %d, lag %v", testutil.ToFloat64(consumedRecords.WithLabelValues(stream))-consumed0, len(msgs), lags())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Lag 0 on every partition must mean the group has committed everything.
	if lag, err := GroupLag(ctx, br.Addrs(), nil, "g", topic); err != nil || lag != 0 {
		t.Errorf("gauges say lag 0, the broker says %d (%v)", lag, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(storedRecords.WithLabelValues(stream)) - stored0; got != good {
		t.Errorf("stored records counted %v, want %d", got, good)
	}
	for p := range ends {
		if _, ok := lags()[strconv.Itoa(p)]; !ok {
			t.Errorf("no lag series for partition %d", p)
		}
	}
}

// TestMetricsLagTracker checks the lag arithmetic: high-water mark less the
// first uncommitted offset, counting what is taken but not committed.
func TestMetricsLagTracker(t *testing.T) {
	l := newLagTracker("t.metrics.unit")
	g := func(p int) float64 {
		t.Helper()
		return testutil.ToFloat64(consumerLag.WithLabelValues("t.metrics.unit", strconv.Itoa(p)))
	}
	check := func(p int, want float64) {
		t.Helper()
		if got := g(p); got != want {
			t.Errorf("partition %d lag %v, want %v", p, got, want)
		}
	}
	l.taken(0, 100, 110) // committed at 100, 10 messages from 100 to 109
	check(0, 10)
	l.taken(0, 101, 110) // taken, not committed: still behind
	check(0, 10)
	l.committed(0, 101)
	check(0, 8)
	l.taken(0, 102, 120) // more produced meanwhile
	check(0, 18)
	l.committed(0, 119)
	check(0, 0)
	l.taken(1, 5, 6)
	check(1, 1)
	check(0, 0)
	// After a rebalance the partition may resume elsewhere than where this
	// consumer left it: the first message taken after a commit says where.
	l.taken(0, 130, 140)
	check(0, 10)
}
