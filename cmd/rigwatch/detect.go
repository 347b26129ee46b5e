package main

import (
	"context"
	"fmt"
	"slices"
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

func (s storeSeries) MeterReadingsOf(ctx context.Context, ids []string, from, to time.Time, fn func(string, []time.Time, []float64, []int32) error) error {
	return s.st.MeterReadingsOf(ctx, ids, from, to, fn)
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

// evaluate runs the engine over (from, to] of src and hands its findings
// to sink.
func evaluate(ctx context.Context, eng *detect.Engine, src detect.Series, st *store.Store, sink *notify.Sink, from, to time.Time) error {
	start := time.Now()
	alerts, err := eng.Evaluate(ctx, src, from, to)
	evalSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("cannot evaluate %s..%s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	if err := keep(ctx, eng, st, sink, to, alerts); err != nil {
		return err
	}
	// Only now is everything up to `to` stored: whoever waits on this
	// metric (and then stops serve) must find the alerts there.
	eventTime.Set(float64(to.Unix()))
	return nil
}

// keep stores what an evaluation up to to found: the feeders' loss
// models and hours and the sites' hours the pages read (and the span they
// now cover), then the alerts.
func keep(ctx context.Context, eng *detect.Engine, st *store.Store, sink *notify.Sink, to time.Time, alerts []schemas.Alert) error {
	if err := st.WriteLossModels(ctx, eng.LossModels()); err != nil {
		return err
	}
	fs, ss := eng.Hours()
	if err := st.WriteHours(ctx, fs, ss); err != nil {
		return err
	}
	if err := st.PublishHours(ctx, eng.HoursFrom(), hourBefore(to)); err != nil {
		return err
	}
	return sink.Emit(ctx, alerts)
}

// hourBefore returns the last whole hour at or before t.
func hourBefore(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

var rowsReadBack = promauto.NewCounter(prometheus.CounterOpts{
	Name: "rigwatch_detect_rows_read_total",
	Help: "Readings live detection has read back from ClickHouse; divided by rigwatch_consumer_stored_total of the readings topic, the rows read back per reading stored.",
})

// detectLoop runs live detection (detect.Live) until ctx ends: the
// engine's state is kept in ClickHouse, so that a process taking over
// detection continues from it; the barrier waits for the registry and
// purchases produced before the readings evaluated; the readings consumers
// mark what they store behind the detector's horizon.
//
// Each step tells p whether it did what there was to do, for readiness;
// the registry records must also have reached this process's in-memory
// registry (inIndex: the registry follower's Reached).
func detectLoop(ctx context.Context, rt *runtime, eng *detect.Engine, sink *notify.Sink, every, lateness time.Duration,
	p *progress, inIndex func(schemas.Stream, ingest.Offsets) bool) error {
	var rows int64
	l := &detect.Live{
		Engine: eng, Source: storeSeries{rt.store}, Barrier: &contextBarrier{rt: rt, inIndex: inIndex},
		Marks: &storeMarks{st: rt.store}, State: storeState{rt.store},
		Every: every, Lateness: lateness, Log: rt.log.With(zap.String("component", "detect")),
		Emit: func(ctx context.Context, to time.Time, alerts []schemas.Alert) error {
			return keep(ctx, eng, rt.store, sink, to, alerts)
		},
		Evaluated: func(to time.Time, took time.Duration, read int64) {
			evalSeconds.Observe(took.Seconds())
			eventTime.Set(float64(to.Unix()))
			if read > rows {
				rowsReadBack.Add(float64(read - rows))
			}
			rows = read
		},
		Stepped: func(err error) {
			if err != nil {
				p.failed(err)
			} else {
				p.ok()
			}
		},
	}
	return l.Run(ctx)
}

func (s storeSeries) ReadingSpan(ctx context.Context) (time.Time, time.Time, error) {
	return s.st.ReadingSpan(ctx)
}

func (s storeSeries) Watermark(ctx context.Context, latest time.Time) (time.Time, error) {
	return s.st.Watermark(ctx, latest)
}

// contextBarrier holds an evaluation back until the consumers have stored
// the context topics up to their end offsets when it was chosen: everything
// produced before the readings the watermark covers. So live evaluation
// sees the data a replay sees: a site does not look over capacity, or an
// operator short of purchases, only because their records are in flight.
//
// A detector's first evaluation in its term also waits for the readings
// produced before it: a process killed mid-batch leaves readings that
// are redelivered only after its partitions move, behind a watermark the
// readings it did store have already advanced.
type contextBarrier struct {
	rt      *runtime
	inIndex func(schemas.Stream, ingest.Offsets) bool
	ends    map[schemas.Stream]ingest.Offsets
	started bool // an evaluation has passed: readings are no longer waited for
}

func (b *contextBarrier) Note(ctx context.Context) (err error) {
	topics := contextTopics
	if !b.started {
		topics = append(slices.Clip(topics), schemas.Readings)
	}
	b.ends, err = topicEnds(ctx, b.rt, topics)
	return err
}

func (b *contextBarrier) Passed(ctx context.Context) (bool, error) {
	ok := contextStored(ctx, b.rt, b.ends, b.inIndex)
	if ok {
		b.started = true
	}
	return ok, nil
}

// storeState keeps the detector's snapshot in ClickHouse.
type storeState struct{ st *store.Store }

func (s storeState) Load(ctx context.Context) ([]byte, error) {
	b, _, err := s.st.LoadDetectorState(ctx)
	return b, err
}

func (s storeState) Save(ctx context.Context, to time.Time, b []byte) error {
	return s.st.SaveDetectorState(ctx, to, b)
}

// markSkew is how far the clocks of the processes noting marks may run
// behind the detector's: marks are read back that far, and those already
// taken skipped.
const markSkew = 2 * time.Minute

// storeMarks is the detector's side of the marks in ClickHouse: it
// publishes its horizon and takes the marks noted since it last looked.
type storeMarks struct {
	st    *store.Store
	since time.Time                      // marks noted before were taken
	seen  map[store.ReadingMark]struct{} // taken, noted since since-markSkew
}

func (m *storeMarks) Publish(ctx context.Context, h time.Time) error {
	if m.since.IsZero() {
		// A detector that starts reads everything it needs afresh.
		m.since = time.Now().Add(-markSkew)
	}
	return m.st.PublishHorizon(ctx, h)
}

func (m *storeMarks) Take(ctx context.Context) ([]detect.Mark, error) {
	now := time.Now()
	rs, err := m.st.ReadingMarksSince(ctx, m.since.Add(-markSkew))
	if err != nil {
		return nil, err
	}
	seen := map[store.ReadingMark]struct{}{}
	var out []detect.Mark
	for _, r := range rs {
		if _, ok := m.seen[r]; !ok {
			out = append(out, detect.Mark{MeterID: r.MeterID, TS: r.TS, IntervalS: r.IntervalS})
		}
		if !r.Noted.Before(now.Add(-markSkew)) {
			seen[r] = struct{}{}
		}
	}
	m.seen, m.since = seen, now
	return out, nil
}

// contextTopics are the inputs readings are judged against.
var contextTopics = []schemas.Stream{schemas.Licenses, schemas.Meters, schemas.Rigs, schemas.Purchases}

func contextEnds(ctx context.Context, rt *runtime) (map[schemas.Stream]ingest.Offsets, error) {
	return topicEnds(ctx, rt, contextTopics)
}

// topicEnds returns the end offsets of the topics of streams.
func topicEnds(ctx context.Context, rt *runtime, streams []schemas.Stream) (map[schemas.Stream]ingest.Offsets, error) {
	out := map[schemas.Stream]ingest.Offsets{}
	for _, s := range streams {
		e, err := ingest.EndOffsets(ctx, rt.brokers, rt.dialer, s.Topic())
		if err != nil {
			return nil, err
		}
		out[s] = e
	}
	return out, nil
}

// contextStored reports whether the consumers have stored every topic of
// ends up to its offsets, and the registry's have reached the in-memory
// registry (inIndex; nil: no such check).
func contextStored(ctx context.Context, rt *runtime, ends map[schemas.Stream]ingest.Offsets, inIndex func(schemas.Stream, ingest.Offsets) bool) bool {
	for s, e := range ends {
		behind, err := ingest.Behind(ctx, rt.brokers, rt.dialer, rt.cfg.KafkaGroup+"."+string(s), s.Topic(), e)
		if err != nil || behind > 0 {
			return false
		}
		if inIndex != nil && s.Registry() && !inIndex(s, e) {
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
