package detect

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
)

var _ Registry = (*registry.Index)(nil)

// world is a simulated scenario loaded into a registry and a MemSeries.
type world struct {
	s   *sim.Scenario
	reg *registry.Index
	src *MemSeries
}

func newWorld(t testing.TB, cfg sim.Config) *world {
	t.Helper()
	s, reg := simFleet(t, cfg)
	src := NewMemSeries()
	var buf []schemas.Reading
	for step := 0; step < s.Steps(); step++ {
		buf = s.ReadingsAt(step, buf)
		src.AddReadings(buf...)
	}
	src.AddPurchases(s.Purchases()...)
	return &world{s: s, reg: reg, src: src}
}

// simFleet simulates a scenario and loads its licences, meters and rigs
// into a registry.
func simFleet(t testing.TB, cfg sim.Config) (*sim.Scenario, *registry.Index) {
	t.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(registry.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.ApplyLicenses(s.Licenses()); err != nil {
		t.Fatal(err)
	}
	if err := reg.ApplyMeters(s.Meters()); err != nil {
		t.Fatal(err)
	}
	if err := reg.ApplyRigs(s.Rigs()); err != nil {
		t.Fatal(err)
	}
	return s, reg
}

func (w *world) engine(t testing.TB) *Engine {
	t.Helper()
	e, err := New(Config{}, w.reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (w *world) evaluate(t testing.TB, e *Engine, from, to time.Time) []schemas.Alert {
	t.Helper()
	as, err := e.Evaluate(context.Background(), w.src, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func report(t testing.TB, w *world, as []schemas.Alert) sim.Report {
	t.Helper()
	rep := sim.Score(w.s.Truth(), as, sim.ScoreOptions{})
	var b bytes.Buffer
	rep.Format(&b)
	t.Logf("\n%s", b.String())
	return rep
}

func TestSimSeeds(t *testing.T) {
	seeds := []int64{1, 2, 3}
	days := 14
	if testing.Short() {
		seeds, days = seeds[:1], 10
	}
	for _, seed := range seeds {
		w := newWorld(t, sim.Config{Seed: seed, Feeders: 40, Days: days})
		start := time.Now()
		as := w.evaluate(t, w.engine(t), w.s.Start(), w.s.End())
		t.Logf("seed %d: %d alerts in %s", seed, len(as), time.Since(start))
		rep := report(t, w, as)
		for _, f := range rep.Failures() {
			t.Errorf("seed %d: %s", seed, f)
		}
	}
}

func TestCleanGrid(t *testing.T) {
	days := 14
	if testing.Short() {
		days = 7
	}
	// Data that begins at local midnight, and data that begins within a
	// settlement's grace after it or in the middle of a day: the first
	// settled day must count the purchases made before the data.
	for _, start := range []time.Duration{0, 90 * time.Minute, 12*time.Hour + 15*time.Minute} {
		t.Run("start+"+start.String(), func(t *testing.T) {
			w := newWorld(t, sim.Config{Seed: 5, Feeders: 40, Days: days, Incidents: []string{}, Start: sim.DefaultStart.Add(start)})
			as := w.evaluate(t, w.engine(t), w.s.Start(), w.s.End())
			for _, a := range as {
				t.Errorf("clean grid raised %s on %s %s: %s", a.Kind, a.EntityType, a.EntityID, a.Summary)
			}
		})
	}
}

// TestStepwise checks that replaying twice gives the same alerts, and that
// evaluating every 6 hours of event time, merging updates by alert_id, gives
// the alerts of one evaluation over the whole period.
func TestStepwise(t *testing.T) {
	days := 8
	if testing.Short() {
		days = 5
	}
	for _, tc := range []struct {
		name string
		cfg  sim.Config
		step time.Duration
	}{
		{"grid", sim.Config{Seed: 7, Feeders: 20, Days: days}, 6 * time.Hour},
		// live: an evaluation an hour
		{"hourly", sim.Config{Seed: 8, Preset: sim.PresetTheft, Feeders: 6, Days: 16}, time.Hour},
		// under-reporting meters, suspects and rules over whole days
		{"theft", sim.Config{Seed: 7, Preset: sim.PresetTheft, Feeders: 6, Days: 20}, 12 * time.Hour},
		// stuck meters and a business's calendar
		{"offices", sim.Config{Seed: 7, Preset: sim.PresetOffices, Feeders: 2, Days: 60}, 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.cfg)
			e := w.engine(t)
			whole := w.evaluate(t, e, w.s.Start(), w.s.End())
			again := w.evaluate(t, e, w.s.Start(), w.s.End())
			if !sameAlerts(t, "replayed", whole, again) {
				return
			}
			live := w.engine(t)
			var merged alertLog
			for from := w.s.Start(); from.Before(w.s.End()); from = from.Add(tc.step) {
				to := from.Add(tc.step)
				if to.After(w.s.End()) {
					to = w.s.End()
				}
				merged.add(w.evaluate(t, live, from, to))
			}
			step := merged.list()
			if !sameAlerts(t, "stepwise", whole, step) {
				return
			}
			kinds := map[string]int{}
			for _, a := range whole {
				kinds[a.Kind]++
			}
			t.Logf("%d alerts %v alike whole and step by step", len(whole), kinds)
		})
	}
}

func sameAlerts(t *testing.T, what string, want, got []schemas.Alert) bool {
	t.Helper()
	idx := map[string]schemas.Alert{}
	for _, a := range got {
		idx[a.AlertID] = a
	}
	ok := len(idx) == len(want)
	if !ok {
		t.Errorf("%s: %d alerts, want %d", what, len(idx), len(want))
		wanted := map[string]bool{}
		for _, a := range want {
			wanted[a.AlertID] = true
		}
		for id, a := range idx {
			if !wanted[id] {
				t.Errorf("%s: extra %s %s %s detected %s window %s: %.200s", what, a.Kind, a.EntityID, id, a.DetectedAt, a.WindowStart, a.Summary)
			}
		}
	}
	for _, a := range want {
		b, found := idx[a.AlertID]
		switch {
		case !found:
			t.Errorf("%s: missing %s %s %s detected %s", what, a.Kind, a.EntityID, a.AlertID, a.DetectedAt)
			ok = false
		case a.Kind == schemas.KindRegistryViolation:
		case !a.DetectedAt.Equal(b.DetectedAt) || !a.WindowStart.Equal(b.WindowStart) || !a.WindowEnd.Equal(b.WindowEnd) ||
			!sameNum(a.ExcessKWh, b.ExcessKWh):
			t.Errorf("%s: %s %s differs: detected %s/%s window %s-%s / %s-%s excess %v/%v", what, a.Kind, a.EntityID,
				a.DetectedAt, b.DetectedAt, a.WindowStart, a.WindowEnd, b.WindowStart, b.WindowEnd, val(a.ExcessKWh), val(b.ExcessKWh))
			ok = false
		}
		if found && fmt.Sprint(a.Evidence["suspect_meters"]) != fmt.Sprint(b.Evidence["suspect_meters"]) {
			t.Errorf("%s: %s %s names other suspects: %v / %v", what, a.Kind, a.EntityID, a.Evidence["suspect_meters"], b.Evidence["suspect_meters"])
			ok = false
		}
	}
	return ok
}

func val(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

// sameNum reports whether two alert figures agree: they are rounded to 0.1,
// and sums taken in a different order may round to either side.
func sameNum(a, b *float64) bool {
	x, y := val(a), val(b)
	return math.Abs(x-y) <= 0.1+1e-6*(math.Abs(x)+math.Abs(y))
}

// alertLog keeps the alerts of successive evaluations as the alerts table
// does: one per id, the latest figures, the first detection time, and a
// registry violation's earliest window start; in the order they first came.
type alertLog struct {
	by    map[string]schemas.Alert
	order []string
}

func (l *alertLog) add(as []schemas.Alert) {
	if l.by == nil {
		l.by = map[string]schemas.Alert{}
	}
	for _, a := range as {
		old, ok := l.by[a.AlertID]
		if !ok {
			l.order = append(l.order, a.AlertID)
		} else if old.DetectedAt.Before(a.DetectedAt) {
			a.DetectedAt = old.DetectedAt
		}
		if a.Kind == schemas.KindRegistryViolation && ok {
			a.WindowStart = minTime(a.WindowStart, old.WindowStart)
		}
		l.by[a.AlertID] = a
	}
}

func (l *alertLog) list() []schemas.Alert {
	var out []schemas.Alert
	for _, id := range l.order {
		out = append(out, l.by[id])
	}
	return out
}
