package registry

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

func license(id, op, status string, kw float64, from, to, at int) schemas.License {
	return schemas.License{LicenseID: id, OperatorID: op, Status: status, ValidFrom: day(from), ValidTo: day(to),
		LicensedCapacityKW: &kw, UpdatedAt: day(at)}
}

func load(t *testing.T, ls []schemas.License, rs []schemas.Rig) *Index {
	t.Helper()
	ix := newIndex(t)
	if err := ix.ApplyLicenses(ls); err != nil {
		t.Fatal(err)
	}
	if err := ix.ApplyRigs(rs); err != nil {
		t.Fatal(err)
	}
	return ix
}

func rules(as []schemas.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Evidence["rule"].(string)+":"+a.EntityID)
	}
	slices.Sort(out)
	return out
}

func TestCleanRegistryRaisesNone(t *testing.T) {
	ls, rs, ms := GenerateNational(1, 5000, 12)
	ix := load(t, ls, rs)
	if err := ix.ApplyMeters(ms); err != nil {
		t.Fatal(err)
	}
	if as := ix.Check(day(300)); len(as) != 0 {
		t.Errorf("clean registry raised %d alerts, first: %s", len(as), as[0].Summary)
	}
	if as := ix.CheckWindow(day(-400), day(900)); len(as) != 0 {
		t.Errorf("clean registry raised %d alerts over a window, first: %s", len(as), as[0].Summary)
	}
}

func TestInactiveLicense(t *testing.T) {
	ls := []schemas.License{
		license("L-1", "OP-1", "active", 1000, 0, 100, 0),
		license("L-1", "OP-1", "suspended", 1000, 0, 100, 20),
		license("L-1", "OP-1", "active", 1000, 0, 100, 30),
	}
	ix := load(t, ls, []schemas.Rig{rig("R1", "A", "active", 3250, 1)})
	if as := ix.Check(day(10)); len(as) != 0 {
		t.Errorf("valid licence: %v", rules(as))
	}
	as := ix.Check(day(25))
	if got := rules(as); !slices.Equal(got, []string{"inactive_license:L-1"}) {
		t.Fatalf("suspended licence: %v", got)
	}
	a := as[0]
	if a.Severity != schemas.SeverityCritical || a.Kind != schemas.KindRegistryViolation || a.Status != schemas.StatusOpen ||
		a.EntityType != schemas.EntityLicense || !a.WindowStart.Equal(day(20)) || !a.DetectedAt.Equal(day(20)) || !a.WindowEnd.Equal(day(25)) ||
		a.LicenseID != "L-1" || a.OperatorID != "OP-1" || a.SiteID != "A" || a.Evidence["license_state"] != "suspended" ||
		!slices.Equal(a.Evidence["rig_ids"].([]string), []string{"R1"}) || a.Evidence["active_rigs"] != 1 {
		t.Errorf("alert = %+v", a)
	}
	t.Log(a.Summary)
	if as := ix.Check(day(35)); len(as) != 0 {
		t.Errorf("reinstated licence: %v", rules(as))
	}
	if as := ix.Check(day(100)); len(rules(as)) != 1 || as[0].Evidence["license_state"] != "expired" {
		t.Errorf("expired licence: %v", rules(as))
	}
	w := ix.CheckWindow(day(0), day(40))
	if len(w) != 1 || !w[0].WindowStart.Equal(day(20)) || !w[0].WindowEnd.Equal(day(30)) {
		t.Errorf("window: %+v", w)
	}
	// A rig under a licence nobody issued.
	ix = load(t, nil, []schemas.Rig{rig("R1", "A", "active", 3250, 1)})
	if as := ix.Check(day(2)); len(as) != 1 || as[0].Evidence["license_state"] != "missing" {
		t.Errorf("missing licence: %v", rules(as))
	}
}

// TestInactiveLicenseOneAlertPerLicense: every rig under a revoked licence
// is one finding on the licence, its rigs counted in full and listed up to
// MaxEvidenceIDs; rigs decommissioned part-way still count for the time they
// ran; a rig of another operator naming the licence is its own finding.
func TestInactiveLicenseOneAlertPerLicense(t *testing.T) {
	ls := []schemas.License{
		license("L-1", "OP-1", "active", 10000, 0, 100, 0),
		license("L-1", "OP-1", "revoked", 10000, 0, 100, 10),
		license("L-2", "OP-2", "active", 10000, 0, 100, 0),
	}
	var rs []schemas.Rig
	for i := range 150 {
		site := "A"
		if i%3 == 0 {
			site = "B"
		}
		rs = append(rs, rig(fmt.Sprintf("R%03d", i), site, "active", 3250, 1))
	}
	rs = append(rs, rig("R000", "B", "decommissioned", 3250, 15)) // stops part-way
	stray := rig("X1", "C", "active", 3250, 1)
	stray.OperatorID = "OP-3" // names OP-1's licence
	rs = append(rs, stray)
	ix := load(t, ls, rs)
	if got := rules(ix.Check(day(5))); !slices.Equal(got, []string{"inactive_license:L-1"}) {
		t.Fatalf("before revocation: %v", got) // only the stray rig
	}
	as := ix.Check(day(20))
	if got := rules(as); !slices.Equal(got, []string{"inactive_license:L-1", "inactive_license:L-1"}) {
		t.Fatalf("revoked: %v", got)
	}
	var own schemas.Alert
	for _, a := range as {
		if a.OperatorID == "OP-1" {
			own = a
		}
	}
	ids := own.Evidence["rig_ids"].([]string)
	if own.Evidence["active_rigs"] != 149 || len(ids) != MaxEvidenceIDs || ids[0] != "R001" || own.Evidence["rig_ids_truncated"] != true ||
		own.Evidence["site_count"] != 2 || own.SiteID != "" || own.Evidence["license_state"] != "revoked" || !own.WindowStart.Equal(day(10)) {
		t.Errorf("alert = %+v", own)
	}
	if mw := own.Evidence["registered_mw"].(float64); math.Abs(mw-149*3250/1e6) > 1e-9 {
		t.Errorf("registered_mw %v", mw)
	}
	t.Log(own.Summary)
	// Over a window: still one alert per licence and operator, and the same
	// ids as the instant checks.
	w := ix.CheckWindow(day(0), day(30))
	if len(w) != 2 {
		t.Fatalf("window: %v", rules(w))
	}
	for _, a := range w {
		if a.OperatorID == "OP-1" && a.AlertID != own.AlertID {
			t.Errorf("window id %s, instant id %s", a.AlertID, own.AlertID)
		}
	}
}

func TestDuplicateSerial(t *testing.T) {
	ls := []schemas.License{license("L-1", "OP-1", "active", 1000, 0, 100, 0)}
	r2 := rig("R2", "B", "active", 3250, 5)
	r2.Serial = "SN-R1"
	ix := load(t, ls, []schemas.Rig{rig("R1", "A", "active", 3250, 1), r2, rig("R2", "B", "decommissioned", 3250, 9)})
	if as := ix.Check(day(3)); len(as) != 0 {
		t.Errorf("one rig: %v", rules(as))
	}
	as := ix.Check(day(6))
	// The newer registration (R2, day 5) is the finding; R1 is evidence.
	if got := rules(as); !slices.Equal(got, []string{"duplicate_serial:R2"}) {
		t.Fatalf("duplicate: %v", got)
	}
	if ids := as[0].Evidence["rig_ids"].([]string); !slices.Equal(ids, []string{"R1", "R2"}) || as[0].Severity != schemas.SeverityWarning ||
		!slices.Equal(as[0].Evidence["other_rig_ids"].([]string), []string{"R1"}) || as[0].SiteID != "B" {
		t.Errorf("evidence %v severity %s", ids, as[0].Severity)
	}
	t.Log(as[0].Summary)
	if as := ix.Check(day(9)); len(as) != 0 {
		t.Errorf("after decommission: %v", rules(as))
	}
}

func TestRatedPower(t *testing.T) {
	ls := []schemas.License{license("L-1", "OP-1", "active", 1000, 0, 100, 0)}
	odd := rig("R3", "A", "active", 99999, 1)
	odd.Model = "Homemade 9000" // unknown model: no check
	ix := load(t, ls, []schemas.Rig{
		rig("R1", "A", "active", 10000, 1), // S19 Pro is 3250 W: 3.1x
		rig("R2", "A", "active", 1000, 1),  // 0.31x
		rig("R4", "A", "active", 6500, 1),  // exactly 2x: allowed
		odd,
	})
	as := ix.Check(day(2))
	if got := rules(as); !slices.Equal(got, []string{"rated_power:R1", "rated_power:R2"}) {
		t.Fatalf("got %v", got)
	}
	if as[0].RigID != "R2" { // 1/0.31 = 3.25 > 3.08: more suspicious
		t.Errorf("order: %s first", as[0].RigID)
	}
	t.Log(as[0].Summary)
}

func TestCapacityOverLicense(t *testing.T) {
	ls := []schemas.License{license("L-1", "OP-1", "active", 5, 0, 100, 0)}
	// One site over: both the site and the licence total.
	ix := load(t, ls, []schemas.Rig{rig("R1", "A", "active", 3000, 1), rig("R2", "A", "active", 3000, 4)})
	if as := ix.Check(day(2)); len(as) != 0 {
		t.Errorf("under capacity: %v", rules(as))
	}
	as := ix.Check(day(5))
	if got := rules(as); !slices.Equal(got, []string{"license_over_capacity:L-1", "site_over_license:L-1"}) {
		t.Fatalf("got %v", got)
	}
	for _, a := range as {
		if a.Severity != schemas.SeverityCritical || a.EntityType != schemas.EntityLicense || a.Score != 6.0/5 || !a.WindowStart.Equal(day(4)) {
			t.Errorf("alert %+v", a)
		}
		if (a.Evidence["rule"] == RuleSiteOverLicense) != (a.SiteID == "A") {
			t.Errorf("site id %q on %s", a.SiteID, a.Evidence["rule"])
		}
		t.Log(a.Summary)
	}
	// Two sites each within the licence, together over it: the licence only.
	ix = load(t, ls, []schemas.Rig{rig("R1", "A", "active", 3000, 1), rig("R2", "B", "active", 3000, 4)})
	if got := rules(ix.Check(day(5))); !slices.Equal(got, []string{"license_over_capacity:L-1"}) {
		t.Errorf("two sites: %v", got)
	}
	// Raising the licence clears it from that instant on.
	more := license("L-1", "OP-1", "active", 10, 0, 100, 8)
	if err := ix.ApplyLicense(more); err != nil {
		t.Fatal(err)
	}
	if as := ix.Check(day(8)); len(as) != 0 {
		t.Errorf("after raise: %v", rules(as))
	}
}

func TestAlertIDsDeterministic(t *testing.T) {
	ls := []schemas.License{license("L-1", "OP-1", "revoked", 1, 0, 100, 0)}
	rs := []schemas.Rig{rig("R1", "A", "active", 3250, 1), rig("R2", "A", "active", 9000, 2)}
	a := load(t, ls, rs).Check(day(5))
	slices.Reverse(rs)
	b := load(t, ls, rs).Check(day(5))
	c := load(t, ls, rs).CheckWindow(day(3), day(9))
	// one inactive licence (both rigs), one rated power, licence and site
	// over capacity
	if len(a) != 4 || len(a) != len(b) || len(c) != len(a) {
		t.Fatalf("%d, %d and %d alerts: %v", len(a), len(b), len(c), rules(a))
	}
	for i := range a {
		if a[i].AlertID != b[i].AlertID || a[i].AlertID != c[i].AlertID || len(a[i].AlertID) != 32 {
			t.Errorf("alert %d: ids %s, %s, %s", i, a[i].AlertID, b[i].AlertID, c[i].AlertID)
		}
	}
}

func TestStats(t *testing.T) {
	ls, rs, ms := GenerateNational(3, 3000, 5)
	ix := load(t, ls, rs)
	if err := ix.ApplyMeters(ms); err != nil {
		t.Fatal(err)
	}
	st := ix.Stats(day(400))
	if st.ActiveRigs != 3000 || st.Operators != 5 || st.OperatorsLicensed != 5 || st.Licenses["active"] != 5 || len(st.ByOperator) != 5 {
		t.Errorf("stats %+v", st)
	}
	var mw float64
	for _, g := range st.ByOblast {
		if g.Key == UnknownOblast {
			t.Errorf("site without oblast: %+v", g)
		}
		mw += g.MW
	}
	if d := mw - st.RegisteredMW; d > 1e-9 || d < -1e-9 {
		t.Errorf("oblasts sum to %v MW, total %v", mw, st.RegisteredMW)
	}
	if st := ix.Stats(day(2000)); st.Licenses["expired"] != 5 || st.OperatorsLicensed != 0 {
		t.Errorf("after expiry: %+v", st.Licenses)
	}
}

// TestFindingsCachedEqualRecomputed: the findings kept over all time, cut at
// a check's end, give the alerts that evaluating the rules up to that end
// gives, at every instant and over every window, and are recomputed when a
// record arrives: random registries with every rule firing on and off,
// records dated before and after the checks.
func TestFindingsCachedEqualRecomputed(t *testing.T) {
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 7))
		ix := newIndex(t)
		statuses := []string{"active", "active", "active", "suspended", "revoked", "expired"}
		rstat := []string{"active", "active", "active", "decommissioned", "inactive"}
		ops := []string{"OP-1", "OP-2", "OP-3"}
		// kinds: 0 both, 1 licences only, 2 rigs only
		apply := func(n, kinds int) {
			for range n {
				k := rng.IntN(3)
				if kinds > 0 {
					k = 2 * (kinds - 1)
				}
				switch k {
				case 0:
					kw := float64(rng.IntN(40)) * 3.25
					from := rng.IntN(60) - 20
					l := license(fmt.Sprintf("L-%d", rng.IntN(5)), ops[rng.IntN(3)], statuses[rng.IntN(len(statuses))], kw, from, from+rng.IntN(90), rng.IntN(100))
					if rng.IntN(5) == 0 {
						l.LicensedCapacityKW = nil
					}
					if err := ix.ApplyLicense(l); err != nil {
						t.Fatal(err)
					}
				default:
					id := fmt.Sprintf("R%02d", rng.IntN(40))
					r := rig(id, fmt.Sprintf("S%d", rng.IntN(4)), rstat[rng.IntN(len(rstat))], []float64{3250, 3250, 3250, 900, 9000}[rng.IntN(5)], rng.IntN(100))
					r.Serial = fmt.Sprintf("SN-%02d", rng.IntN(30))
					r.OperatorID, r.LicenseID = ops[rng.IntN(3)], fmt.Sprintf("L-%d", rng.IntN(5))
					if rng.IntN(10) == 0 {
						r = tomb(id, rng.IntN(100))
					}
					if err := ix.ApplyRig(r); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		found := 0
		for round := range 6 {
			apply(40, []int{0, 1, 2, 1, 2, 0}[round])
			for range 30 {
				a, b := rng.IntN(110)-5, rng.IntN(110)-5
				if a > b {
					a, b = b, a
				}
				f, e := day(a).Add(time.Duration(rng.IntN(24))*time.Hour), day(b).Add(time.Duration(rng.IntN(24))*time.Hour)
				got := ix.CheckWindow(f, e)
				ix.mu.RLock()
				want := ix.checkWindow(ix.violations(nanos(e)), nanos(f), nanos(e))
				ix.mu.RUnlock()
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d round %d: window %v..%v:\ncached     %+v\nrecomputed %+v", seed, round, f, e, got, want)
				}
				found += len(got)
				got = ix.Check(f)
				want = checkAt(ix, f)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d round %d: at %v:\ncached     %+v\nrecomputed %+v", seed, round, f, got, want)
				}
			}
		}
		if found == 0 {
			t.Errorf("seed %d: no findings to compare", seed)
		}
	}
}

// checkAt is Check evaluating the rules up to t alone.
func checkAt(ix *Index, t time.Time) []schemas.Alert {
	at := nanos(t)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []schemas.Alert
	for _, v := range ix.violations(at + 1) {
		for _, s := range v.spans {
			if s.from <= at && at < s.to {
				a := ix.finish(&v, at, s.from, s.from)
				a.WindowEnd = t
				out = append(out, a)
				break
			}
		}
	}
	sortAlerts(out)
	return out
}
