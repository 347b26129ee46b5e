package detect

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
)

// arrival is a reading as ingest stores it: at event time at.
type arrival struct {
	at time.Time
	r  schemas.Reading
}

// arrivals returns a scenario's readings in the order they reach the store:
// most on time, late ones up to lateMax after their interval ends, and
// corrections (a second version with another value) a day or so later.
func arrivals(s *sim.Scenario, late, lateMax time.Duration, lateShare, fixShare float64) []arrival {
	rng := rand.New(rand.NewPCG(3, 4))
	var out []arrival
	var buf []schemas.Reading
	for step := 0; step < s.Steps(); step++ {
		buf = s.ReadingsAt(step, buf)
		for _, r := range buf {
			// the store keeps the latest version: a correction the
			// scenario sends after a wrong value stays the latest
			// whichever arrives first
			r.Version = uint64(len(out) + 1)
			at := r.TS
			if x := rng.Float64(); x < lateShare {
				at = at.Add(late + time.Duration(rng.Int64N(int64(lateMax-late)+1)))
			}
			out = append(out, arrival{at, r})
			if rng.Float64() < fixShare {
				c := r
				c.KWh *= 0.5 + rng.Float64()
				c.Version = r.Version + 1<<40
				out = append(out, arrival{r.TS.Add(20*time.Hour + time.Duration(rng.IntN(20))*time.Hour), c})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b arrival) int { return a.at.Compare(b.at) })
	return out
}

// TestLiveLateReadings runs an engine hour by hour while readings arrive
// late and are corrected days later, ingest naming the meter-hours it
// stored behind the engine (Invalidate). Each day the engine's hourly
// aggregates and the feeders' and sites' series derived from them must
// equal those of a fresh engine reading everything stored by then, and it
// must have read back each stored reading not much more than once. With a
// read overlap of an hour, readings up to an hour late need no mark.
func TestLiveLateReadings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		overlap time.Duration
	}{{"marks", 0}, {"overlap", time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, sim.Config{Seed: 7, Preset: sim.PresetTheft, Feeders: 4, Days: 12})
			arr := arrivals(w.s, time.Minute, 30*time.Hour, 0.03, 0.005)
			src := NewMemSeries()
			src.AddPurchases(w.s.Purchases()...)
			e, err := New(Config{ReadOverlap: tc.overlap, Lookback: 7 * 24 * time.Hour}, w.reg, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			from := w.s.Start()
			next, stored, marked := 0, 0, 0
			pages := pageHours{feeders: map[string]schemas.FeederHour{}, sites: map[string]schemas.SiteHour{}}
			for to := from.Add(time.Hour); !to.After(w.s.End()); to = to.Add(time.Hour) {
				var marks []Mark
				for ; next < len(arr) && !arr[next].at.After(to); next++ {
					r := arr[next].r
					src.AddReadings(r)
					stored++
					// Ingest names the readings the engine has read past,
					// less the overlap it reads again anyway.
					if !r.TS.After(from.Add(-tc.overlap)) {
						marks = append(marks, Mark{r.MeterID, r.TS, r.IntervalS})
					}
				}
				marked += len(marks)
				e.Invalidate(marks)
				if _, err := e.Evaluate(ctx, src, from, to); err != nil {
					t.Fatal(err)
				}
				pages.add(e.Hours())
				from = to
				if to.Sub(w.s.Start())%(24*time.Hour) == 0 && to.Sub(w.s.Start()) >= 3*24*time.Hour {
					fresh := sameState(t, to, e, src)
					pages.same(t, to, fresh)
				}
			}
			if marked == 0 {
				t.Fatal("no reading arrived behind the engine: the test tests nothing")
			}
			per := float64(e.RowsRead()) / float64(stored)
			t.Logf("%d readings stored, %d marked late, %.3f rows read back per reading", stored, marked, per)
			// each mark reads its meter's hour again, and the readings
			// either side: about six readings, eight at an hour's end
			if max := 1.1 + float64(tc.overlap/time.Hour) + 8*float64(marked)/float64(stored); per > max {
				t.Errorf("read back %.3f rows per reading stored, want at most %.1f", per, max)
			}
		})
	}
}

// pageHours are the feeder and site hours an engine emitted, the latest of
// each hour kept: as the pages' tables hold them.
type pageHours struct {
	feeders map[string]schemas.FeederHour
	sites   map[string]schemas.SiteHour
}

func (p *pageHours) add(fs []schemas.FeederHour, ss []schemas.SiteHour) {
	for _, f := range fs {
		p.feeders[f.FeederID+f.Hour.String()] = f
	}
	for _, s := range ss {
		p.sites[s.MeterID+s.Hour.String()] = s
	}
}

// same compares the hours emitted with a fresh engine's series.
func (p *pageHours) same(t *testing.T, to time.Time, fresh *Engine) {
	t.Helper()
	g := fresh.st.g
	bad := 0
	for id, f := range fresh.st.feeders {
		for h := range f.m {
			got := p.feeders[id+g.hourTime(h).String()] // absent: nothing there
			want := schemas.FeederHour{FeederID: id, Hour: g.hourTime(h), HeadKWh: float64(g.eRow(f.head)[h]), MetersKWh: f.all[h],
				Meters: int(f.cnt[h]), Complete: f.complete[h]}
			if got.FeederID == "" && want.HeadKWh == 0 && want.MetersKWh == 0 && !want.Complete {
				continue
			}
			if got.Complete != want.Complete || got.Meters != want.Meters || math.Abs(got.HeadKWh-want.HeadKWh) > 1e-3 || math.Abs(got.MetersKWh-want.MetersKWh) > 1e-3 {
				if bad++; bad <= 5 {
					t.Errorf("%s: feeder hour emitted %+v, fresh %+v", to, got, want)
				}
			}
		}
	}
	for mi, s := range fresh.st.sites {
		id := g.ids[mi]
		for h := range s.p {
			got := p.sites[id+g.hourTime(h).String()]
			if got.MeterID == "" && g.eRow(mi)[h] == 0 && g.covRow(mi)[h] == 0 && s.c[h] == 0 {
				continue
			}
			if math.Abs(got.KWh-float64(g.eRow(mi)[h])) > 1e-3 || got.CoveredS != int(g.covRow(mi)[h]) || math.Abs(got.CapacityKW-s.c[h]) > 1e-6 {
				if bad++; bad <= 5 {
					t.Errorf("%s: site hour emitted %+v, fresh %v kWh %d s %v kW", to, got, g.eRow(mi)[h], g.covRow(mi)[h], s.c[h])
				}
			}
		}
	}
}

// sameState compares engine e's state after evaluating up to to with that
// of a fresh engine reading everything src holds, and returns the fresh one.
func sameState(t *testing.T, to time.Time, e *Engine, src Series) *Engine {
	t.Helper()
	fresh, err := New(e.cfg, e.reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Evaluate(context.Background(), src, to.Add(-time.Hour), to); err != nil {
		t.Fatal(err)
	}
	g, f := e.st.g, fresh.st.g
	bad := 0
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-4*(1+math.Abs(a)+math.Abs(b)) }
	for id, fi := range f.idx {
		gi, ok := g.idx[id]
		if !ok {
			t.Errorf("%s: meter %s missing from the live grid", to, id)
			continue
		}
		for fh := 0; fh < f.n; fh++ {
			gh := int((f.t0-g.t0)/hourS) + fh
			if gh < 0 || gh >= g.n {
				continue
			}
			if !near(float64(g.eRow(gi)[gh]), float64(f.eRow(fi)[fh])) || g.covRow(gi)[gh] != f.covRow(fi)[fh] ||
				g.dnRow(gi)[gh] != f.dnRow(fi)[fh] || !near(float64(g.dsqRow(gi)[gh]), float64(f.dsqRow(fi)[fh])) {
				if bad++; bad <= 5 {
					t.Errorf("%s: meter %s hour %s: live %v kWh %d s %d diffs, fresh %v kWh %d s %d diffs", to, id, g.hourTime(gh),
						g.eRow(gi)[gh], g.covRow(gi)[gh], g.dnRow(gi)[gh], f.eRow(fi)[fh], f.covRow(fi)[fh], f.dnRow(fi)[fh])
				}
			}
		}
	}
	for id, ff := range fresh.st.feeders {
		lf := e.st.feeders[id]
		if lf == nil {
			t.Errorf("%s: feeder %s missing from the live state", to, id)
			continue
		}
		for fh := range ff.m {
			gh := int((f.t0-g.t0)/hourS) + fh
			if gh < 0 || gh >= g.n {
				continue
			}
			if lf.complete[gh] != ff.complete[fh] || !near(lf.m[gh], ff.m[fh]) || !near(lf.hd[gh], ff.hd[fh]) {
				if bad++; bad <= 5 {
					t.Errorf("%s: feeder %s hour %s: live %v %v/%v, fresh %v %v/%v", to, id, g.hourTime(gh),
						lf.complete[gh], lf.m[gh], lf.hd[gh], ff.complete[fh], ff.m[fh], ff.hd[fh])
				}
			}
		}
	}
	for mi, fs := range fresh.st.sites {
		ls := e.st.sites[g.idx[f.ids[mi]]]
		if ls == nil {
			t.Errorf("%s: site meter %s missing from the live state", to, f.ids[mi])
			continue
		}
		for fh := range fs.p {
			gh := int((f.t0-g.t0)/hourS) + fh
			if gh < 0 || gh >= g.n {
				continue
			}
			same := math.IsNaN(ls.p[gh]) == math.IsNaN(fs.p[fh]) && (math.IsNaN(fs.p[fh]) || near(ls.p[gh], fs.p[fh]))
			if !same || !near(ls.c[gh], fs.c[fh]) {
				if bad++; bad <= 5 {
					t.Errorf("%s: site meter %s hour %s: live %v kW of %v, fresh %v of %v", to, f.ids[mi], g.hourTime(gh),
						ls.p[gh], ls.c[gh], fs.p[fh], fs.c[fh])
				}
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d differences in all", to, bad)
	}
	return fresh
}

// TestSnapshotFailover runs live detection hour by hour, hands over to a
// new engine restored from a snapshot at several points (the leader dies,
// another takes over from the stored state), and checks the alerts equal
// one evaluation over the whole period: same ids, windows and figures.
func TestSnapshotFailover(t *testing.T) {
	for _, cfg := range []sim.Config{
		{Seed: 8, Preset: sim.PresetTheft, Feeders: 6, Days: 16},
		{Seed: 7, Feeders: 20, Days: 8},
		// an imbalance whose model is re-judged on a day after its
		// window: hour by hour, the new figures are reported too
		{Seed: 11, Feeders: 10, Days: 5},
	} {
		w := newWorld(t, cfg)
		whole := w.evaluate(t, w.engine(t), w.s.Start(), w.s.End())
		e := w.engine(t)
		var merged alertLog
		handovers := 0
		for from := w.s.Start(); from.Before(w.s.End()); from = from.Add(time.Hour) {
			if h := from.Sub(w.s.Start()) / time.Hour; h > 0 && h%53 == 0 {
				b, err := e.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				e = w.engine(t)
				if err := e.Restore(b); err != nil {
					t.Fatal(err)
				}
				if !e.LastTo().Equal(from) {
					t.Fatalf("restored engine ends at %s, want %s", e.LastTo(), from)
				}
				handovers++
			}
			merged.add(w.evaluate(t, e, from, from.Add(time.Hour)))
		}
		live := merged.list()
		if sameAlerts(t, "after failovers", whole, live) {
			t.Logf("%s: %d alerts alike after %d failovers", cfg.Preset, len(whole), handovers)
		}
	}
}

// A fresh engine's grid starts on the local day the first reading ends in:
// no day of empty hours before data that begin at local midnight (a day of
// a million meters' hours is 250 MB), and the day before when the first
// reading ends at midnight itself.
func TestFreshGridStartsWithTheData(t *testing.T) {
	for _, c := range []struct {
		start time.Duration // after local midnight of the scenario's day
		day   int           // the grid's first day, from that day
	}{{0, 0}, {90 * time.Minute, 0}, {12*time.Hour + 15*time.Minute, 0}, {-15 * time.Minute, -1}} {
		w := newWorld(t, sim.Config{Seed: 2, Feeders: 4, Days: 2, Start: sim.DefaultStart.Add(c.start)})
		e := w.engine(t)
		from := HourOf(w.s.Start().Add(time.Second))
		for h := range 30 {
			w.evaluate(t, e, from.Add(time.Duration(h)*time.Hour), from.Add(time.Duration(h+1)*time.Hour))
		}
		want := sim.DefaultStart.AddDate(0, 0, c.day).UTC()
		if got := time.Unix(e.st.g.t0, 0).UTC(); !got.Equal(want) {
			t.Errorf("data from %s local: grid starts %s local, want %s", w.s.Start().In(schemas.Local).Format(time.DateTime),
				got.In(schemas.Local).Format(time.DateTime), want.In(schemas.Local).Format(time.DateTime))
		}
	}
}
