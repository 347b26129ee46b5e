package registry

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// day returns t0 plus d days.
func day(d int) time.Time { return t0.Add(time.Duration(d) * 24 * time.Hour) }

func rig(id, site, status string, w float64, d int) schemas.Rig {
	return schemas.Rig{RigID: id, Serial: "SN-" + id, Model: "Antminer S19 Pro", RatedPowerW: w,
		OperatorID: "OP-1", LicenseID: "L-1", SiteID: site, Status: status, UpdatedAt: day(d)}
}

func tomb(id string, d int) schemas.Rig {
	return schemas.Rig{RigID: id, UpdatedAt: day(d), Meta: schemas.Meta{Deleted: true}}
}

func withVer(r schemas.Rig, v uint64) schemas.Rig { r.Version = v; return r }

func newIndex(t testing.TB) *Index {
	t.Helper()
	ix, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// loads applies records one by one in the given order, one by one reversed,
// and as one batch: the registry must not depend on arrival order.
func loads(t *testing.T, rs []schemas.Rig) map[string]*Index {
	t.Helper()
	out := map[string]*Index{}
	fwd, rev, batch := newIndex(t), newIndex(t), newIndex(t)
	for _, r := range rs {
		if err := fwd.ApplyRig(r); err != nil {
			t.Fatal(err)
		}
	}
	for i := len(rs) - 1; i >= 0; i-- {
		if err := rev.ApplyRig(rs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.ApplyRigs(slices.Clone(rs)); err != nil {
		t.Fatal(err)
	}
	out["in order"], out["reversed"], out["batch"] = fwd, rev, batch
	// Small batches mix rebuilt and record-by-record sites in one batch.
	for _, n := range []int{3, 7, 20} {
		ix := newIndex(t)
		for i := 0; i < len(rs); i += n {
			if err := ix.ApplyRigs(slices.Clone(rs[i:min(i+n, len(rs))])); err != nil {
				t.Fatal(err)
			}
		}
		out[fmt.Sprintf("batches of %d", n)] = ix
	}
	return out
}

func TestCapacityOverTime(t *testing.T) {
	type probe struct {
		site string
		d    int
		want float64
	}
	cases := []struct {
		name   string
		rigs   []schemas.Rig
		probes []probe
	}{
		{"late older record ignored", []schemas.Rig{
			rig("R1", "A", "active", 3250, 10),
			rig("R1", "B", "active", 3250, 5), // older, arrives late: history only
		}, []probe{{"A", 4, 0}, {"B", 5, 3250}, {"B", 9, 3250}, {"A", 10, 3250}, {"B", 10, 0}, {"A", 100, 3250}}},
		{"late older decommission ignored", []schemas.Rig{
			rig("R1", "A", "active", 3250, 10),
			rig("R1", "A", "decommissioned", 3250, 5),
		}, []probe{{"A", 5, 0}, {"A", 10, 3250}, {"A", 50, 3250}}},
		{"tombstone", []schemas.Rig{
			rig("R1", "A", "active", 3250, 1), rig("R2", "A", "active", 3000, 1), tomb("R1", 5),
		}, []probe{{"A", 0, 0}, {"A", 1, 6250}, {"A", 4, 6250}, {"A", 5, 3000}, {"A", 90, 3000}}},
		{"re-registration after decommission and tombstone", []schemas.Rig{
			rig("R1", "A", "active", 3250, 1), rig("R1", "A", "decommissioned", 3250, 3),
			rig("R1", "A", "active", 3250, 6), tomb("R1", 8), rig("R1", "A", "active", 3400, 9),
		}, []probe{{"A", 2, 3250}, {"A", 3, 0}, {"A", 6, 3250}, {"A", 8, 0}, {"A", 9, 3400}}},
		{"decommission mid-period", []schemas.Rig{
			rig("R1", "A", "active", 3250, 1), rig("R2", "A", "active", 3250, 1),
			rig("R2", "A", "decommissioned", 3250, 15),
		}, []probe{{"A", 1, 6500}, {"A", 14, 6500}, {"A", 15, 3250}, {"A", 30, 3250}}},
		{"suspended does not count", []schemas.Rig{
			rig("R1", "A", "suspended", 3250, 1), rig("R2", "A", "active", 1000, 1),
		}, []probe{{"A", 2, 1000}}},
		{"rig moves site", []schemas.Rig{
			rig("R1", "A", "active", 3250, 1), rig("R1", "B", "active", 3250, 7),
		}, []probe{{"A", 6, 3250}, {"B", 6, 0}, {"A", 7, 0}, {"B", 7, 3250}}},
		{"same instant: later delivery wins", []schemas.Rig{
			withVer(rig("R1", "A", "decommissioned", 3250, 2), 2), withVer(rig("R1", "A", "active", 3250, 2), 1),
		}, []probe{{"A", 3, 0}}},
		{"redelivery counts once", []schemas.Rig{
			rig("R1", "A", "active", 3250, 2), rig("R1", "A", "active", 3250, 2),
		}, []probe{{"A", 3, 3250}}},
		{"fractional watts return to zero", []schemas.Rig{
			rig("R1", "A", "active", 0.1, 1), rig("R2", "A", "active", 0.2, 2), tomb("R1", 3), tomb("R2", 4),
		}, []probe{{"A", 2, 0.3}, {"A", 4, 0}}},
	}
	for _, c := range cases {
		for how, ix := range loads(t, c.rigs) {
			for _, p := range c.probes {
				if got := ix.SiteCapacityW(p.site, day(p.d)); got != p.want {
					t.Errorf("%s (%s): site %s day %d: capacity %v W, want %v", c.name, how, p.site, p.d, got, p.want)
				}
			}
		}
	}
}

func TestCapacityChanges(t *testing.T) {
	for how, ix := range loads(t, []schemas.Rig{
		rig("R1", "A", "active", 3250, 1), rig("R2", "A", "active", 3250, 1),
		rig("R3", "A", "active", 3000, 20), rig("R2", "A", "decommissioned", 3250, 15),
		rig("R2", "A", "decommissioned", 3250, 16), // no capacity change
	}) {
		got := ix.CapacityChanges("A", day(10), day(30))
		want := []Step{{day(10), 6500, 2}, {day(15), 3250, 1}, {day(20), 6250, 2}}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", how, got, want)
		}
		if got := ix.CapacityChanges("nowhere", day(10), day(30)); !slices.Equal(got, []Step{{At: day(10)}}) {
			t.Errorf("%s: unknown site: %v", how, got)
		}
	}
}

func TestRigQueries(t *testing.T) {
	ix := newIndex(t)
	for _, r := range []schemas.Rig{rig("R1", "A", "active", 3250, 1), rig("R1", "B", "active", 3250, 5), tomb("R1", 9)} {
		if err := ix.ApplyRig(r); err != nil {
			t.Fatal(err)
		}
	}
	if r, ok := ix.RigAt("R1", day(6)); !ok || r.SiteID != "B" {
		t.Errorf("RigAt day 6 = %+v, %v; want site B", r, ok)
	}
	if _, ok := ix.RigAt("R1", day(9)); ok {
		t.Error("RigAt after tombstone: want false")
	}
	if h := ix.RigHistory("R1"); len(h) != 3 || !h[2].Deleted {
		t.Errorf("RigHistory = %+v", h)
	}
	if h := ix.RigBySerial("SN-R1"); len(h) != 2 {
		t.Errorf("RigBySerial: %d versions, want 2", len(h))
	}
	if h := ix.SiteHistory("A"); len(h) != 3 {
		t.Errorf("SiteHistory: %d versions, want 3", len(h))
	}
	if f := ix.SiteFleet("B", day(6)); f != (Fleet{1, 3250}) {
		t.Errorf("SiteFleet = %+v", f)
	}
	if f := ix.OperatorFleet("OP-1", day(6)); f != (Fleet{1, 3250}) {
		t.Errorf("OperatorFleet = %+v", f)
	}
	if err := ix.ApplyRig(schemas.Rig{RigID: "R2", UpdatedAt: day(1), RatedPowerW: -1}); err == nil {
		t.Error("negative power accepted")
	}
	if err := ix.ApplyRig(schemas.Rig{UpdatedAt: day(1), RatedPowerW: 1}); err == nil {
		t.Error("empty rig id accepted")
	}
}

func TestMetersAndLicences(t *testing.T) {
	ix := newIndex(t)
	m := func(id, feeder, role, site string, d int) schemas.Meter {
		return schemas.Meter{MeterID: id, FeederID: feeder, Role: role, Class: schemas.ClassMining, SiteID: site, Oblast: "Pavlodar", UpdatedAt: day(d)}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ix.ApplyMeters([]schemas.Meter{m("M1", "F1", "site", "A", 1), m("M2", "F1", "feeder_head", "", 1), m("M1", "F2", "site", "A", 10)}))
	if got := ix.FeederMeters("F1", day(5)); len(got) != 2 {
		t.Errorf("F1 day 5: %d meters, want 2", len(got))
	}
	if got := ix.FeederMeters("F1", day(10)); len(got) != 1 || got[0].MeterID != "M2" {
		t.Errorf("F1 day 10: %+v", got)
	}
	if got := ix.SiteMeters("A", day(10)); len(got) != 1 || got[0].FeederID != "F2" {
		t.Errorf("site A day 10: %+v", got)
	}
	if o, ok := ix.SiteOblast("A", day(2)); !ok || o != "Pavlodar" {
		t.Errorf("SiteOblast = %q, %v", o, ok)
	}
	kw := 100.0
	l := schemas.License{LicenseID: "L-1", OperatorID: "OP-1", Status: "active", ValidFrom: day(0), ValidTo: day(30), LicensedCapacityKW: &kw, UpdatedAt: day(0)}
	must(ix.ApplyLicense(l))
	l.Status, l.UpdatedAt = "suspended", day(10)
	must(ix.ApplyLicense(l))
	for _, c := range []struct {
		d    int
		want bool
	}{{-1, false}, {0, true}, {9, true}, {10, false}} {
		if got := ix.LicenseValid("L-1", day(c.d)); got != c.want {
			t.Errorf("LicenseValid day %d = %v", c.d, got)
		}
	}
	if ls := ix.OperatorLicenses("OP-1", day(11)); len(ls) != 1 || ls[0].Status != "suspended" {
		t.Errorf("OperatorLicenses = %+v", ls)
	}
}

// TestRandomHistoriesAgree loads random rig histories in random order one
// by one and as a batch, and compares both with a brute-force evaluation.
func TestRandomHistoriesAgree(t *testing.T) {
	for seed := range uint64(5) {
		randomHistories(t, rand.New(rand.NewPCG(seed, 7)))
	}
}

func randomHistories(t *testing.T, rng *rand.Rand) {
	sites := []string{"A", "B", "C"}
	statuses := []string{"active", "active", "suspended", "decommissioned"}
	var rs []schemas.Rig
	for i := range 300 {
		id := "R" + string(rune('a'+i%40))
		d := rng.IntN(60)
		if rng.IntN(8) == 0 {
			rs = append(rs, withVer(tomb(id, d), uint64(rng.IntN(3)*1000+i)))
			continue
		}
		r := rig(id, sites[rng.IntN(3)], statuses[rng.IntN(4)], float64(1000+rng.IntN(3000))+0.5, d)
		rs = append(rs, withVer(r, uint64(rng.IntN(3)*1000+i)))
	}
	rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	brute := func(site string, t time.Time) float64 {
		latest := map[string]schemas.Rig{}
		for _, r := range rs {
			if r.UpdatedAt.After(t) {
				continue
			}
			if p, ok := latest[r.RigID]; ok && (p.UpdatedAt.After(r.UpdatedAt) || p.UpdatedAt.Equal(r.UpdatedAt) && p.Version >= r.Version) {
				continue
			}
			latest[r.RigID] = r
		}
		var w float64
		for _, r := range latest {
			if !r.Deleted && r.Status == "active" && r.SiteID == site {
				w += r.RatedPowerW
			}
		}
		return w
	}
	for how, ix := range loads(t, rs) {
		for _, s := range sites {
			for d := -1; d < 62; d++ {
				if got, want := ix.SiteCapacityW(s, day(d)), brute(s, day(d)); got != want {
					t.Fatalf("%s: site %s day %d: %v W, brute force %v W", how, s, d, got, want)
				}
			}
		}
		for i := range ix.groups {
			g := &ix.groups[i]
			for _, st := range g.cap.steps {
				if want := brute(ix.sites.s[g.site], timeOf(st.at)); float64(st.mw)/1000 != want {
					t.Fatalf("%s: group series of site %s differs at %v", how, ix.sites.s[g.site], timeOf(st.at))
				}
			}
		}
	}
}

// TestChangesAndNextMeterChange: meter and rig records move their counters
// (a redelivery does not), and NextMeterChange names the next meter record
// after an instant, in any arrival order.
func TestChangesAndNextMeterChange(t *testing.T) {
	ix := newIndex(t)
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	m := func(id string, at time.Time) schemas.Meter {
		return schemas.Meter{MeterID: id, FeederID: "F1", Role: schemas.RoleCustomer, UpdatedAt: at}
	}
	for _, x := range []schemas.Meter{m("M2", t0.Add(5*time.Hour)), m("M1", t0), m("M1", t0.Add(2*time.Hour))} {
		if err := ix.ApplyMeter(x); err != nil {
			t.Fatal(err)
		}
	}
	_ = ix.ApplyMeter(m("M1", t0)) // a redelivery
	if meters, rigs := ix.Changes(); meters != 3 || rigs != 0 {
		t.Errorf("changes %d meters, %d rigs; want 3, 0", meters, rigs)
	}
	for _, tc := range []struct{ at, want time.Time }{
		{t0.Add(-time.Hour), t0}, {t0, t0.Add(2 * time.Hour)}, {t0.Add(3 * time.Hour), t0.Add(5 * time.Hour)}, {t0.Add(5 * time.Hour), time.Time{}},
	} {
		if got := ix.NextMeterChange(tc.at); !got.Equal(tc.want) {
			t.Errorf("next meter change after %s: %s, want %s", tc.at, got, tc.want)
		}
	}
	if err := ix.ApplyMeter(m("M3", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if got := ix.NextMeterChange(t0); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("after a new record, next meter change after %s: %s, want %s", t0, got, t0.Add(time.Hour))
	}
}

// TestOperatorSites: the sites an operator ever had a rig at, whoever
// holds them now, and none of another operator's.
func TestOperatorSites(t *testing.T) {
	ix := newIndex(t)
	a := rig("R1", "S1", "active", 3250, 1)
	moved := rig("R1", "S2", "active", 3250, 5) // the same rig moves
	other := rig("R2", "S3", "active", 3250, 1)
	other.OperatorID = "OP-B"
	sold := rig("R3", "S4", "active", 3250, 1)
	soldLater := rig("R3", "S4", "active", 3250, 9) // sold to OP-B
	soldLater.OperatorID = "OP-B"
	for _, r := range []schemas.Rig{a, moved, other, sold, soldLater} {
		if err := ix.ApplyRig(r); err != nil {
			t.Fatal(err)
		}
	}
	op := a.OperatorID
	if got := fmt.Sprint(ix.OperatorSites(op)); got != "[S1 S2 S4]" {
		t.Errorf("%s's sites: %s, want [S1 S2 S4]", op, got)
	}
	if got := fmt.Sprint(ix.OperatorSites("OP-B")); got != "[S3 S4]" {
		t.Errorf("OP-B's sites: %s, want [S3 S4]", got)
	}
	if got := ix.OperatorSites("OP-NONE"); got != nil {
		t.Errorf("an unknown operator's sites: %v", got)
	}
}

// TestFeederSummaryAt: a feeder's summary (head and other meters counted,
// the head's class, the oblast) equals what FeederMeters gives, at every
// day of random meter histories that move meters between feeders, change
// their roles and delete them.
func TestFeederSummaryAt(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	ix := newIndex(t)
	feeders := []string{"F1", "F2", "F3"}
	roles := []string{schemas.RoleFeederHead, schemas.RoleCustomer, schemas.RoleCustomer, schemas.RoleSite}
	for i := range 400 {
		m := schemas.Meter{MeterID: fmt.Sprintf("M%02d", rng.IntN(60)), FeederID: feeders[rng.IntN(3)], Role: roles[rng.IntN(4)],
			Class: []string{"", "residential", "industrial"}[rng.IntN(3)], Oblast: []string{"", "East Kazakhstan", "Almaty"}[rng.IntN(3)],
			UpdatedAt: day(rng.IntN(30)), Meta: schemas.Meta{Version: uint64(i + 1), Deleted: rng.IntN(10) == 0}}
		if err := ix.ApplyMeter(m); err != nil {
			t.Fatal(err)
		}
	}
	for d := -1; d < 32; d++ {
		for _, f := range feeders {
			var want FeederSummary
			for _, m := range ix.FeederMeters(f, day(d)) {
				if want.Oblast == "" {
					want.Oblast = m.Oblast
				}
				if m.Role != schemas.RoleFeederHead {
					want.Meters++
					continue
				}
				want.HeadMeters++
				if want.Class == "" {
					want.Class = m.Class
				}
			}
			if got := ix.FeederSummaryAt(f, day(d)); got != want {
				t.Fatalf("feeder %s day %d: summary %+v, from its meters %+v", f, d, got, want)
			}
		}
	}
}
