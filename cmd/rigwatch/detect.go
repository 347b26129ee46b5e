package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/detect"
	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

var (
	evalSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "rigwatch_detect_evaluation_seconds", Help: "Time to evaluate the rules over one window of event time.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
	})
	alertsRaised = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "rigwatch_alerts_opened_total", Help: "Alerts opened, by kind and severity.",
	}, []string{"kind", "severity"})
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

// alertSink delivers the detector's findings: the alerts table (keeping
// what people set), the alerts topic and, for replay, a JSON Lines file of
// the final state of every alert. Safe for concurrent use.
type alertSink struct {
	st      *store.Store
	topic   *kafka.Writer // nil: no broker
	publish func([]schemas.Alert)
	notify  func(context.Context, []schemas.Alert) // told of opened alerts and those that became critical; must not block
	log     *zap.Logger

	mu    sync.Mutex
	final map[string]schemas.Alert
}

func (s *alertSink) emit(ctx context.Context, alerts []schemas.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	res, err := s.st.UpsertAlertsDetail(ctx, alerts)
	if err != nil {
		return err
	}
	for _, a := range res.Opened {
		alertsRaised.WithLabelValues(a.Kind, a.Severity).Inc()
	}
	// People are told of new findings and of findings that became critical.
	if told := append(append([]schemas.Alert(nil), res.Opened...), res.Escalated...); s.notify != nil && len(told) > 0 {
		s.notify(ctx, told)
	}
	changed := append(append([]schemas.Alert(nil), res.Opened...), res.Updated...)
	if s.topic != nil && len(changed) > 0 {
		msgs := make([]kafka.Message, len(changed))
		for i := range changed {
			v, err := json.Marshal(&changed[i])
			if err != nil {
				return err
			}
			msgs[i] = kafka.Message{Key: []byte(changed[i].AlertID), Value: v}
		}
		if err := s.topic.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("cannot publish %d alerts: %w", len(msgs), ingest.WriteError(err))
		}
	}
	if s.publish != nil && len(changed) > 0 {
		s.publish(changed)
	}
	s.mu.Lock()
	if s.final == nil {
		s.final = map[string]schemas.Alert{}
	}
	for _, a := range alerts {
		s.final[a.AlertID] = a
	}
	s.mu.Unlock()
	if len(res.Opened) > 0 {
		s.log.Info("alerts opened", zap.Int("opened", len(res.Opened)), zap.Int("updated", len(res.Updated)))
	}
	return nil
}

// writeFile writes the final state of every alert the sink saw as JSON
// Lines, in a stable order.
func (s *alertSink) writeFile(path string) (int, error) {
	s.mu.Lock()
	all := make([]schemas.Alert, 0, len(s.final))
	for _, a := range s.final {
		all = append(all, a)
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if all[i].Kind != all[j].Kind {
			return all[i].Kind < all[j].Kind
		}
		if !all[i].DetectedAt.Equal(all[j].DetectedAt) {
			return all[i].DetectedAt.Before(all[j].DetectedAt)
		}
		return all[i].AlertID < all[j].AlertID
	})
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("cannot write alerts: %w", err)
	}
	enc := json.NewEncoder(f)
	for i := range all {
		if err := enc.Encode(&all[i]); err != nil {
			f.Close()
			return 0, err
		}
	}
	return len(all), f.Close()
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
func evaluate(ctx context.Context, eng *detect.Engine, src detect.Series, st *store.Store, sink *alertSink, from, to time.Time) error {
	start := time.Now()
	alerts, err := eng.Evaluate(ctx, src, from, to)
	evalSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("cannot evaluate %s..%s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	eventTime.Set(float64(to.Unix()))
	return keep(ctx, eng, st, sink, alerts)
}

// keep stores what an evaluation found: the feeders' loss models and
// hours and the sites' hours the pages read, then the alerts.
func keep(ctx context.Context, eng *detect.Engine, st *store.Store, sink *alertSink, alerts []schemas.Alert) error {
	if err := st.WriteLossModels(ctx, eng.LossModels()); err != nil {
		return err
	}
	fs, ss := eng.Hours()
	if err := st.WriteHours(ctx, fs, ss); err != nil {
		return err
	}
	return sink.emit(ctx, alerts)
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
func detectLoop(ctx context.Context, rt *runtime, eng *detect.Engine, sink *alertSink, every, lateness time.Duration) error {
	var rows int64
	l := &detect.Live{
		Engine: eng, Source: storeSeries{rt.store}, Barrier: &contextBarrier{rt: rt},
		Marks: &storeMarks{st: rt.store}, State: storeState{rt.store},
		Every: every, Lateness: lateness, Log: rt.log.With(zap.String("component", "detect")),
		Emit: func(ctx context.Context, to time.Time, alerts []schemas.Alert) error {
			return keep(ctx, eng, rt.store, sink, alerts)
		},
		Evaluated: func(to time.Time, took time.Duration, read int64) {
			evalSeconds.Observe(took.Seconds())
			eventTime.Set(float64(to.Unix()))
			if read > rows {
				rowsReadBack.Add(float64(read - rows))
			}
			rows = read
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
type contextBarrier struct {
	rt   *runtime
	ends map[schemas.Stream]ingest.Offsets
}

func (b *contextBarrier) Note(ctx context.Context) (err error) {
	b.ends, err = contextEnds(ctx, b.rt)
	return err
}

func (b *contextBarrier) Passed(ctx context.Context) (bool, error) {
	return contextStored(ctx, b.rt, b.ends), nil
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
// topics up to ends.
func contextStored(ctx context.Context, rt *runtime, ends map[schemas.Stream]ingest.Offsets) bool {
	for _, s := range contextTopics {
		behind, err := ingest.Behind(ctx, rt.brokers, rt.dialer, rt.cfg.KafkaGroup+"."+string(s), s.Topic(), ends[s])
		if err != nil || behind > 0 {
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
