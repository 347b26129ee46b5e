package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rigwatch/rigwatch/schemas"
)

var (
	storedRecords = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "rigwatch_ingest_stored_records_total", Help: "Records stored, by stream.",
	}, []string{"stream"})
	rejectedRecords = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "rigwatch_ingest_rejected_records_total", Help: "Records rejected, by stream, field and rule.",
	}, []string{"stream", "field", "rule"})
	batchSize = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rigwatch_ingest_batch_records", Help: "Records per stored batch.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 10),
	}, []string{"stream"})
	insertSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rigwatch_ingest_insert_seconds", Help: "Time to store one batch.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"stream"})
	insertErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "rigwatch_ingest_insert_errors_total", Help: "Failed attempts to store a batch.",
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
