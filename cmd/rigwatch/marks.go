package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

var (
	readingsMarked = promauto.NewCounter(prometheus.CounterOpts{
		Name: "rigwatch_ingest_readings_marked_late_total",
		Help: "Stored readings that ended at or before live detection's horizon: the detector reads their hours again.",
	})
	markFailures = promauto.NewCounter(prometheus.CounterOpts{
		Name: "rigwatch_ingest_mark_failures_total",
		Help: "Batches whose late readings could not be marked for live detection (their readings are stored all the same).",
	})
)

// markLate returns a batch hook that calls next (if any), then marks the
// batch's readings that end at or before live detection's horizon, read
// after the batch was stored: live detection publishes its horizon before
// it reads, so a reading it did not read is marked, and it reads the
// reading's hour again at its next evaluation.
func markLate(st *store.Store, log *zap.Logger, next ingest.BatchHook) ingest.BatchHook {
	return func(b *schemas.Batch) {
		if next != nil {
			next(b)
		}
		if len(b.Readings) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var err error
		for try := 0; try < 3; try++ {
			if err = markBatch(ctx, st, b.Readings); err == nil {
				return
			}
			time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
		}
		markFailures.Inc()
		log.Warn("cannot mark late readings for detection", zap.Int("readings", len(b.Readings)), zap.Error(err))
	}
}

func markBatch(ctx context.Context, st *store.Store, rs []schemas.Reading) error {
	h, err := st.Horizon(ctx)
	if err != nil || h.IsZero() {
		return err
	}
	var marks []store.ReadingMark
	for i := range rs {
		if !rs[i].TS.After(h) {
			marks = append(marks, store.ReadingMark{MeterID: rs[i].MeterID, TS: rs[i].TS, IntervalS: rs[i].IntervalS})
		}
	}
	if err := st.MarkReadings(ctx, marks); err != nil {
		return err
	}
	readingsMarked.Add(float64(len(marks)))
	return nil
}
