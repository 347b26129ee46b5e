package detect

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
)

// fixture is a small hand-made grid: meter records, rigs, readings and
// purchases written directly, for rules whose cases the simulator makes only
// by chance.
type fixture struct {
	t     *testing.T
	start time.Time
	days  int
	meta  []schemas.Meter
	rigs  []schemas.Rig
	src   *MemSeries
	seq   uint64
}

func newFixture(t *testing.T, days int) *fixture {
	return &fixture{t: t, start: time.Date(2025, 3, 2, 19, 0, 0, 0, time.UTC), days: days, src: NewMemSeries()}
}

func (f *fixture) meter(id, feeder, role, class, site string) {
	f.meta = append(f.meta, schemas.Meter{MeterID: id, FeederID: feeder, Role: role, Class: class, SiteID: site,
		UpdatedAt: f.start.Add(-30 * 24 * time.Hour)})
}

// rigsAt registers n active rigs of w watts at a site from at, and
// decommissions them at until unless it is zero.
func (f *fixture) rigsAt(site, op string, n int, w float64, at, until time.Time) {
	for i := range n {
		r := schemas.Rig{RigID: fmt.Sprintf("%s-R%04d", site, i), Serial: fmt.Sprintf("S%s%05d", site, i), Model: "Antminer S19j Pro",
			RatedPowerW: w, OperatorID: op, LicenseID: "LIC-" + op, SiteID: site, Status: schemas.RigActive, UpdatedAt: at}
		f.rigs = append(f.rigs, r)
		if !until.IsZero() {
			r.Status, r.UpdatedAt = schemas.RigDecommissioned, until
			f.rigs = append(f.rigs, r)
		}
	}
}

// load writes 15-minute readings of meter id whose mean kW over an
// interval ending at t is kw(t).
func (f *fixture) load(id string, kw func(t time.Time) float64) {
	var rs []schemas.Reading
	for t := f.start.Add(15 * time.Minute); !t.After(f.start.Add(time.Duration(f.days) * 24 * time.Hour)); t = t.Add(15 * time.Minute) {
		f.seq++
		rs = append(rs, schemas.Reading{MeterID: id, TS: t, KWh: math.Round(kw(t)*250) / 1000, IntervalS: 900, Meta: schemas.Meta{Version: f.seq}})
	}
	f.src.AddReadings(rs...)
}

// noise is a deterministic wobble in [-1, 1) for meter i at t.
func noise(i int, t time.Time) float64 {
	x := uint64(t.Unix()/900)*0x9E3779B97F4A7C15 ^ uint64(i+1)*0xC2B2AE3D27D4EB4F
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return float64(x>>11)/(1<<53)*2 - 1
}

// household is a household's kW at t: a morning and an evening peak.
func household(i int, t time.Time) float64 {
	h := float64(t.In(schemas.Local).Hour()) + float64(t.In(schemas.Local).Minute())/60
	v := 0.35 + 0.5*math.Exp(-(h-8)*(h-8)/2) + 1.1*math.Exp(-(h-19.5)*(h-19.5)/4)
	return v * (0.8 + 0.05*float64(i%7)) * (1 + 0.25*noise(i, t))
}

func (f *fixture) run() []schemas.Alert {
	f.t.Helper()
	reg, err := registry.New(registry.Config{}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, r := range f.rigs {
		ops[r.OperatorID] = true
	}
	var lics []schemas.License
	for op := range ops {
		lics = append(lics, schemas.License{LicenseID: "LIC-" + op, OperatorID: op, Status: schemas.LicenseActive,
			ValidFrom: f.start.AddDate(-1, 0, 0), ValidTo: f.start.AddDate(2, 0, 0), UpdatedAt: f.start.AddDate(-1, 0, 0)})
	}
	if err := reg.ApplyLicenses(lics); err != nil {
		f.t.Fatal(err)
	}
	if err := reg.ApplyMeters(f.meta); err != nil {
		f.t.Fatal(err)
	}
	if err := reg.ApplyRigs(f.rigs); err != nil {
		f.t.Fatal(err)
	}
	e, err := New(Config{}, reg, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	as, err := e.Evaluate(context.Background(), f.src, f.start, f.start.Add(time.Duration(f.days)*24*time.Hour))
	if err != nil {
		f.t.Fatal(err)
	}
	return as
}

// feeder adds a feeder of n households and a head meter measuring them,
// the extra loads given, and technical losses c + a*P + b*P^2 (kW), with the
// served load adjusted by moved(t) (switching).
func (f *fixture) feeder(id string, n int, c, a, b float64, extra map[string]func(time.Time) float64, moved func(time.Time) float64) {
	f.meter(id+"-HEAD", id, schemas.RoleFeederHead, schemas.ClassResidential, "")
	for i := range n {
		f.meter(fmt.Sprintf("%s-H%02d", id, i), id, schemas.RoleCustomer, schemas.ClassResidential, "")
		f.load(fmt.Sprintf("%s-H%02d", id, i), func(t time.Time) float64 { return household(i, t) })
	}
	for mid, kw := range extra {
		f.load(mid, kw)
	}
	f.load(id+"-HEAD", func(t time.Time) float64 {
		p := 0.0
		for i := range n {
			p += household(i, t)
		}
		for _, kw := range extra {
			p += kw(t)
		}
		if moved != nil {
			p += moved(t)
		}
		return p + (c+a*p+b*p*p)*(1+0.05*noise(999, t))
	})
}

func kinds(as []schemas.Alert) map[string]int {
	out := map[string]int{}
	for _, a := range as {
		out[a.Kind]++
	}
	return out
}

// TestSiteClosedForGood: a feeder whose mining site closes for good keeps
// its transformers' no-load losses while the metered load falls to a few
// households: no feeder_imbalance (issue 12.5: it fired at +1,204%), nor
// when the site is curtailed each evening or grows by new registrations.
func TestSiteClosedForGood(t *testing.T) {
	for _, tc := range []struct {
		name string
		site func(t time.Time, start time.Time) float64
		rigs func(f *fixture)
	}{
		{"closed", func(t, s time.Time) float64 {
			if t.After(s.Add(10 * 24 * time.Hour)) {
				return 0
			}
			return 2900
		}, func(f *fixture) {
			f.rigsAt("SITE-1", "OP-1", 900, 3250, f.start.AddDate(0, -2, 0), f.start.Add(10*24*time.Hour))
		}},
		{"curtailed", func(t, s time.Time) float64 {
			if h := t.In(schemas.Local).Hour(); h >= 18 && h < 21 {
				return 600
			}
			return 2900
		}, func(f *fixture) { f.rigsAt("SITE-1", "OP-1", 900, 3250, f.start.AddDate(0, -2, 0), time.Time{}) }},
		{"grown", func(t, s time.Time) float64 {
			if t.After(s.Add(10*24*time.Hour + 2*time.Hour)) {
				return 2900
			}
			return 970
		}, func(f *fixture) {
			f.rigsAt("SITE-1", "OP-1", 300, 3250, f.start.AddDate(0, -2, 0), time.Time{})
			f.rigsAt("SITE-2", "OP-1", 600, 3250, f.start.Add(10*24*time.Hour), time.Time{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 20)
			f.meter("SITE-1-M", "F1", schemas.RoleSite, schemas.ClassMining, "SITE-1")
			tc.rigs(f)
			// No-load losses sized to the transformer for the site: 0.4% of 3 MW.
			f.feeder("F1", 20, 12, 0.02, 2e-6, map[string]func(time.Time) float64{
				"SITE-1-M": func(t time.Time) float64 { return tc.site(t, f.start) * (1 + 0.005*noise(7, t)) },
			}, nil)
			for _, a := range f.run() {
				if a.Kind == schemas.KindFeederImbalance || a.Kind == schemas.KindTopologyChange {
					t.Errorf("%s on %s: %s", a.Kind, a.EntityID, a.Summary)
				}
			}
		})
	}
}

// TestSwitchingIsNotTheft: a block of a feeder's customers served from its
// neighbour for two days, with no meter record, is a topology_change naming
// both feeders, not a feeder_imbalance (issue 13.5).
func TestSwitchingIsNotTheft(t *testing.T) {
	f := newFixture(t, 16)
	on, off := f.start.Add(10*24*time.Hour+5*time.Hour), f.start.Add(12*24*time.Hour+5*time.Hour)
	during := func(t time.Time) bool { return t.After(on) && !t.After(off) }
	// Three households of F2 (about 10% of its load) are fed from F1.
	moved := func(t time.Time) float64 {
		if !during(t) {
			return 0
		}
		return household(0, t) + household(1, t) + household(2, t)
	}
	f.feeder("F1", 30, 0.3, 0.025, 0.0005, nil, moved)
	f.feeder("F2", 30, 0.3, 0.03, 0.0005, nil, func(t time.Time) float64 { return -moved(t) })
	as := f.run()
	var topo []schemas.Alert
	for _, a := range as {
		switch a.Kind {
		case schemas.KindTopologyChange:
			topo = append(topo, a)
		default:
			t.Errorf("%s on %s: %s", a.Kind, a.EntityID, a.Summary)
		}
	}
	if len(topo) == 0 {
		t.Fatal("no topology_change for the switching")
	}
	for _, a := range topo {
		names := a.FeederID + " " + fmt.Sprint(a.Evidence["other_feeder_id"])
		if !strings.Contains(names, "F1") || !strings.Contains(names, "F2") {
			t.Errorf("topology_change names %s, want both F1 and F2: %s", names, a.Summary)
		}
		if a.WindowStart.Before(on.Add(-3*time.Hour)) || a.WindowStart.After(on.Add(6*time.Hour)) {
			t.Errorf("topology_change starts %s, the switching at %s", a.WindowStart, on)
		}
	}
}

// TestTheftFromDayZeroOnLosslessFeeder is the observer-meter benchmark's
// case: a head meter that measures its meters' exact total, and meters
// under-reporting from the first day on every other day. The feeder's
// normal loss is found to be nil, not the theft (it was fitted at 3.6%
// before), and the excess reported is the theft.
func TestTheftFromDayZeroOnLosslessFeeder(t *testing.T) {
	f := newFixture(t, 30)
	f.meter("F1-HEAD", "F1", schemas.RoleFeederHead, schemas.ClassResidential, "")
	var stolen float64
	thief := func(i int) bool { return i < 5 }
	attacked := func(t time.Time) bool { return int(t.Sub(f.start).Hours()/24)%2 == 0 }
	for i := range 33 {
		id := fmt.Sprintf("F1-H%02d", i)
		f.meter(id, "F1", schemas.RoleCustomer, schemas.ClassResidential, "")
		f.load(id, func(t time.Time) float64 {
			if thief(i) && attacked(t) {
				return household(i, t) * 0.4
			}
			return household(i, t)
		})
	}
	f.load("F1-HEAD", func(t time.Time) float64 {
		var p float64
		for i := range 33 {
			p += household(i, t)
			if thief(i) && attacked(t) {
				stolen += household(i, t) * 0.6 / 4 // kWh in 15 minutes
			}
		}
		return p
	})
	as := f.run()
	var excess float64
	for _, a := range as {
		if a.Kind != schemas.KindFeederImbalance {
			t.Errorf("%s on %s: %s", a.Kind, a.EntityID, a.Summary)
			continue
		}
		excess += *a.ExcessKWh
		if s := a.Evidence["normal_loss_share"].(float64); s > 0.005 {
			t.Errorf("normal loss %.1f%% on a feeder with none: %s", 100*s, a.Summary)
		}
		sus, _ := a.Evidence["suspect_meters"].([]schemas.SuspectMeter)
		hit := 0
		for i := 0; i < len(sus) && i < 5; i++ {
			if strings.Compare(sus[i].MeterID, "F1-H05") < 0 {
				hit++
			}
		}
		if hit < 4 {
			t.Errorf("first five suspects %v, want at least four of F1-H00..04", sus)
		}
	}
	if excess < 0.75*stolen || excess > 1.25*stolen {
		t.Errorf("reported %.0f kWh of %.0f stolen", excess, stolen)
	}
}
