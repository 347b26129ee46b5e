package ingest

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rigwatch/rigwatch/schemas"
)

// The ingest metrics, served at /metrics by the default registry. The
// dashboard in deployments/grafana queries them by name: a rename here
// fails its test.
var (
	consumedRecords = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "rigwatch_ingest_consumed_records_total",
		Help: "Messages taken from Kafka, by stream, whether later stored or rejected.",
	}, []string{"stream"})
	storedRecords = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "rigwatch_ingest_stored_records_total", Help: "Records stored in ClickHouse, by stream.",
	}, []string{"stream"})
	rejectedRecords = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "rigwatch_ingest_rejected_records_total", Help: "Records rejected, by stream, field and rule.",
	}, []string{"stream", "field", "rule"})
	consumerLag = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rigwatch_ingest_consumer_lag",
		Help: "Messages in a partition past the consumer's committed offset, as of the last message taken or offset committed.",
	}, []string{"topic", "partition"})
	batchSize = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rigwatch_ingest_batch_records", Help: "Records per stored batch (rejects included), by stream.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 10),
	}, []string{"stream"})
	insertSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rigwatch_ingest_insert_seconds", Help: "Time to store one batch and publish its rejects, by stream.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"stream"})
	insertErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "rigwatch_ingest_insert_errors_total", Help: "Failed attempts to store a batch, by stream.",
	}, []string{"stream"})
)

func observeInsert(s schemas.Stream, b *schemas.Batch, d time.Duration) {
	st := string(s)
	storedRecords.WithLabelValues(st).Add(float64(b.Len() - len(b.Rejects)))
	for i := range b.Rejects {
		rejectedRecords.WithLabelValues(st, b.Rejects[i].Field, b.Rejects[i].Rule).Inc()
	}
	batchSize.WithLabelValues(st).Observe(float64(b.Len()))
	insertSeconds.WithLabelValues(st).Observe(d.Seconds())
}

// lagTracker keeps a consumer's lag gauge per partition: the partition's
// high-water mark, as the last message taken from it reported, less the
// next offset to commit. Like the lag Kafka's own tools report, it counts
// what is fetched but not yet stored and committed. The consumer's loop
// notes what it takes, its storer what it commits.
type lagTracker struct {
	topic string
	mu    sync.Mutex
	parts map[int]*partLag
}

type partLag struct {
	hwm     int64 // high-water mark: the offset the next message produced gets
	next    int64 // first offset not committed
	pending bool  // messages taken since the last commit
	gauge   prometheus.Gauge
}

func newLagTracker(topic string) *lagTracker {
	return &lagTracker{topic: topic, parts: map[int]*partLag{}}
}

func (l *lagTracker) part(p int) *partLag {
	pl := l.parts[p]
	if pl == nil {
		pl = &partLag{gauge: consumerLag.WithLabelValues(l.topic, strconv.Itoa(p))}
		l.parts[p] = pl
	}
	return pl
}

// taken notes a message taken from partition p. The first message taken
// after a commit, or after the partition is assigned, stands at the group's
// committed position.
func (l *lagTracker) taken(p int, offset, hwm int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl := l.part(p)
	if !pl.pending {
		pl.next, pl.pending = offset, true
	}
	pl.hwm = max(pl.hwm, hwm)
	pl.gauge.Set(float64(max(pl.hwm-pl.next, 0)))
}

// committed notes that partition p is committed up to and including offset.
func (l *lagTracker) committed(p int, offset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pl := l.part(p)
	pl.next, pl.pending = offset+1, false
	pl.gauge.Set(float64(max(pl.hwm-pl.next, 0)))
}
