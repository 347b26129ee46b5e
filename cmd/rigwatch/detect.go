package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/detect"
	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/notify"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

var (
	evalSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "rigwatch_detect_evaluation_seconds", Help: "Time to evaluate the rules over one window of event time.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
	})
	eventTime = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "rigwatch_detect_event_time_seconds", Help: "Event time up to which the rules have been evaluated (Unix seconds).",
	})
)

// storeSeries is the store seen as the detector's Series.
type storeSeries struct{ st *store.Store }

func (s storeSeries) MeterReadings(ctx context.Context, from, to time.Time, fn func(string, []time.Time, []float64, []int32) error) error {
	return s.st.MeterReadings(ctx, from, to, fn)
}

func (s storeSeries) Purchases(ctx context.Context, from, to time.Time) ([]schemas.Purchase, error) {
	return s.st.PurchasesBetween(ctx, from, to)
}

func (s storeSeries) MeterTotalsBefore(ctx context.Context, meterIDs []string, t time.Time) (map[string]float64, error) {
	out := map[string]float64{}
	if len(meterIDs) == 0 {
		return out, nil
	}
	totals, err := s.st.MeterTotals(ctx, meterIDs, time.Unix(0, 0), t)
	for id, v := range totals {
		out[id] = v.KWh
	}
	return out, err
}

// newEngine builds the detector over a freshly loaded registry, which it
// also returns.
func newEngine(ctx context.Context, rt *runtime) (*detect.Engine, *registry.Index, error) {
	reg, err := rt.loadRegistry(ctx)
	if err != nil {
		return nil, nil, err
	}
	eng, err := detect.New(detect.Config{TariffKZTPerKWh: rt.cfg.TariffKZTPerKWh}, reg, rt.log)
	return eng, reg, err
}

// evaluate runs the engine over (from, to] and hands its findings to sink.
func evaluate(ctx context.Context, eng *detect.Engine, st *store.Store, sink *notify.Sink, from, to time.Time) error {
	start := time.Now()
	alerts, err := eng.Evaluate(ctx, storeSeries{st}, from, to)
	evalSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("cannot evaluate %s..%s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	if err := st.WriteLossModels(ctx, eng.LossModels()); err != nil {
		return err
	}
	if err := sink.Emit(ctx, alerts); err != nil {
		return err
	}
	// Only now is everything up to `to` stored: whoever waits on this
	// metric (and then stops serve) must find the alerts there.
	eventTime.Set(float64(to.Unix()))
	return nil
}

// hourBefore returns the last whole hour at or before t.
func hourBefore(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// detectLoop evaluates the rules live. Every tick it reads the event-time
// watermark (the time nearly all meters have reported past) and notes the
// end offsets of the registry and purchase topics; once the consumers have
// stored up to those offsets, everything produced before the readings the
// watermark covers is stored, and the rules run up to the last whole hour
// before the watermark less an allowance for late meters. So live
// evaluation sees the data a replay sees: a site does not look over
// capacity, or an operator short of purchases, only because their records
// are still in flight. The registry records must also have reached this
// process's in-memory registry (inIndex: the registry follower's Reached).
// Each pass tells p whether it did what there was to do, for readiness.
func detectLoop(ctx context.Context, rt *runtime, eng *detect.Engine, sink *notify.Sink, every, lateness time.Duration,
	p *progress, inIndex func(schemas.Stream, ingest.Offsets) bool) {
	log := rt.log.With(zap.String("component", "detect"))
	var (
		last    time.Time // evaluated up to here
		pending time.Time // next target, once the context topics reach ends
		ends    map[schemas.Stream]ingest.Offsets
	)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !pending.IsZero() && contextStored(ctx, rt, ends, inIndex) {
			if last.IsZero() || pending.Sub(last) > 30*24*time.Hour {
				// Start where the data starts when it is recent enough to
				// replay, else a lookback before now.
				first, _, err := rt.store.ReadingSpan(ctx)
				if err != nil {
					log.Warn("cannot read the span of readings", zap.Error(err))
					p.failed(err)
					continue
				}
				last = hourBefore(first.Add(-time.Second))
				if pending.Sub(last) > 30*24*time.Hour {
					last = pending.Add(-7 * 24 * time.Hour)
				}
			}
			if pending.After(last) {
				if err := evaluate(ctx, eng, rt.store, sink, last, pending); err != nil {
					if ctx.Err() == nil {
						log.Warn("detection failed; retrying next tick", zap.Error(err))
					}
					p.failed(err)
					continue
				}
				last = pending
			}
			pending = time.Time{}
		}
		if !pending.IsZero() {
			p.ok()
			continue // still waiting for the context topics
		}
		_, latest, err := rt.store.ReadingSpan(ctx)
		if err != nil {
			p.failed(fmt.Errorf("cannot read the span of readings: %w", err))
			continue
		}
		if latest.IsZero() {
			p.ok() // nothing stored to judge yet
			continue
		}
		wm, err := rt.store.Watermark(ctx, latest)
		if err != nil {
			log.Warn("cannot read the event-time watermark", zap.Error(err))
			p.failed(err)
			continue
		}
		target := hourBefore(wm.Add(-lateness))
		if !last.IsZero() && !target.After(last) {
			p.ok()
			continue
		}
		if ends, err = contextEnds(ctx, rt); err != nil {
			log.Warn("cannot read topic offsets", zap.Error(err))
			p.failed(err)
			continue
		}
		p.ok()
		pending = target
	}
}

// contextTopics are the inputs readings are judged against.
var contextTopics = []schemas.Stream{schemas.Licenses, schemas.Meters, schemas.Rigs, schemas.Purchases}

func contextEnds(ctx context.Context, rt *runtime) (map[schemas.Stream]ingest.Offsets, error) {
	out := map[schemas.Stream]ingest.Offsets{}
	for _, s := range contextTopics {
		e, err := ingest.EndOffsets(ctx, rt.brokers, rt.dialer, s.Topic())
		if err != nil {
			return nil, err
		}
		out[s] = e
	}
	return out, nil
}

// contextStored reports whether the consumers have stored the context
// topics up to ends, and the registry's have reached the in-memory
// registry (inIndex; nil: no such check).
func contextStored(ctx context.Context, rt *runtime, ends map[schemas.Stream]ingest.Offsets, inIndex func(schemas.Stream, ingest.Offsets) bool) bool {
	for _, s := range contextTopics {
		behind, err := ingest.Behind(ctx, rt.brokers, rt.dialer, rt.cfg.KafkaGroup+"."+string(s), s.Topic(), ends[s])
		if err != nil || behind > 0 {
			return false
		}
		if inIndex != nil && s != schemas.Purchases && !inIndex(s, ends[s]) {
			return false
		}
	}
	return true
}

// alertsTopic returns a writer for the alerts topic, or nil without a broker.
func alertsTopic(rt *runtime) *kafka.Writer {
	if len(rt.brokers) == 0 {
		return nil
	}
	return ingest.NewWriter(rt.brokers, schemas.AlertsTopic, rt.dialer)
}
