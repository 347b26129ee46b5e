package store_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// The package's tests share one private ClickHouse server, started on first
// use and stopped by TestMain; each test gets its own database.

func newIndex(tb testing.TB) *registry.Index {
	tb.Helper()
	ix, err := registry.New(registry.Config{}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return ix
}

func day(d int) time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d) }

// TestLoadRegistryOrdering writes licence, meter and rig versions the way
// they may arrive (a late older record, a redelivery, a tombstone, a
// re-registration, a decommission mid-period) and checks that the registry
// rebuilt from ClickHouse applies the ordering rules, and agrees with an
// index fed the same batches live.
func TestLoadRegistryOrdering(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := testenv.Store(t)
	live := newIndex(t)

	var ver uint64
	next := func() uint64 { ver++; return ver }
	kw := func(v float64) *float64 { return &v }
	hr := func(v float64) *float64 { return &v }
	lic := func(id, status string, at time.Time) schemas.License {
		return schemas.License{LicenseID: id, OperatorID: "OP-1", OperatorName: "Op One LLP", Status: status,
			ValidFrom: day(-30), ValidTo: day(2000), LicensedCapacityKW: kw(50), UpdatedAt: at, Meta: schemas.Meta{Version: next()}}
	}
	rig := func(id, serial, site, status string, w float64, at time.Time) schemas.Rig {
		return schemas.Rig{RigID: id, Serial: serial, Model: "Antminer S19 Pro", RatedPowerW: w, HashrateTHs: hr(110),
			OperatorID: "OP-1", LicenseID: "L-1", SiteID: site, Status: status, UpdatedAt: at, Meta: schemas.Meta{Version: next()}}
	}
	write := func(b *schemas.Batch) {
		t.Helper()
		if err := s.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := live.ApplyBatch(b); err != nil {
			t.Fatal(err)
		}
	}

	first := &schemas.Batch{
		Licenses: []schemas.License{lic("L-1", "active", day(-31)), lic("L-2", "active", day(-31))},
		Meters: []schemas.Meter{
			{MeterID: "MS-A", FeederID: "F-1", Role: schemas.RoleSite, Class: schemas.ClassMining, SiteID: "A", Oblast: "Pavlodar", UpdatedAt: day(-31), Meta: schemas.Meta{Version: next()}},
			{MeterID: "MH-1", FeederID: "F-1", Role: schemas.RoleFeederHead, Class: schemas.ClassMining, Oblast: "Pavlodar", UpdatedAt: day(-31), Meta: schemas.Meta{Version: next()}},
		},
		Rigs: []schemas.Rig{
			rig("R1", "SN1", "A", schemas.RigActive, 3000, day(31)),
			rig("R2", "SN2", "A", schemas.RigActive, 3250, day(31)),
			rig("R3", "SN3", "A", schemas.RigActive, 3100, day(31)),
		},
	}
	write(first)
	write(first) // a redelivery: same versions, nothing may count twice

	late := &schemas.Batch{
		// older than R1's stored record: in effect only before it
		Rigs: []schemas.Rig{rig("R1", "SN1", "A", schemas.RigSuspended, 3000, day(14))},
		// older than L-1's record, revoking it: changes nothing from day -31 on
		Licenses: []schemas.License{lic("L-1", "revoked", day(-60))},
	}
	write(late)

	mid := &schemas.Batch{Rigs: []schemas.Rig{rig("R2", "SN2", "A", schemas.RigDecommissioned, 3250, day(166))}}
	write(mid)

	tomb := &schemas.Batch{}
	if err := schemas.Tombstone(schemas.Rigs, "R3", day(121), tomb); err != nil {
		t.Fatal(err)
	}
	if err := schemas.Tombstone(schemas.Licenses, "L-2", day(100), tomb); err != nil {
		t.Fatal(err)
	}
	for i := range tomb.Rigs {
		tomb.Rigs[i].Version = next()
	}
	for i := range tomb.Licenses {
		tomb.Licenses[i].Version = next()
	}
	write(tomb)

	rereg := &schemas.Batch{
		Rigs: []schemas.Rig{rig("R3", "SN3", "A", schemas.RigActive, 3100, day(213))},
		// the site meter moves to another feeder mid-period
		Meters: []schemas.Meter{{MeterID: "MS-A", FeederID: "F-2", Role: schemas.RoleSite, Class: schemas.ClassMining, SiteID: "A", Oblast: "Pavlodar", UpdatedAt: day(150), Meta: schemas.Meta{Version: next()}}},
	}
	write(rereg)

	ix := newIndex(t)
	if err := s.LoadRegistry(ctx, ix); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		at   time.Time
		want float64
		why  string
	}{
		{day(20), 0, "R1 suspended by the late older record, R2 and R3 not yet registered"},
		{day(40), 9350, "R1, R2, R3 active"},
		{day(130), 6250, "R3 deleted by its tombstone"},
		{day(170), 3000, "R2 decommissioned mid-period"},
		{day(220), 6100, "R3 re-registered"},
		{time.Now(), 6100, "now"},
	} {
		if got := ix.SiteCapacityW("A", c.at); got != c.want {
			t.Errorf("capacity of A at %s = %v W, want %v (%s)", c.at.Format(time.DateOnly), got, c.want, c.why)
		}
		if got, want := ix.SiteCapacityW("A", c.at), live.SiteCapacityW("A", c.at); got != want {
			t.Errorf("capacity at %s: loaded %v W, live %v W", c.at.Format(time.DateOnly), got, want)
		}
	}

	now := time.Now()
	if r, ok := ix.RigAt("R1", now); !ok || r.Status != schemas.RigActive || r.RatedPowerW != 3000 || r.HashrateTHs == nil || *r.HashrateTHs != 110 {
		t.Errorf("R1 now: %+v, %v", r, ok)
	}
	if r, ok := ix.RigAt("R2", now); !ok || r.Status != schemas.RigDecommissioned {
		t.Errorf("R2 now: %+v, %v", r, ok)
	}
	if _, ok := ix.RigAt("R3", day(150)); ok {
		t.Error("R3 exists between its tombstone and its re-registration")
	}
	if h := ix.RigHistory("R3"); len(h) != 3 || !h[1].Deleted || h[2].Status != schemas.RigActive {
		t.Errorf("R3 history: %+v", h)
	}
	if h := ix.RigHistory("R1"); len(h) != 2 {
		t.Errorf("R1 history has %d versions, want 2 (the redelivery collapsed): %+v", len(h), h)
	}
	if !ix.LicenseValid("L-1", now) {
		t.Error("L-1 not in force: the late older revocation won")
	}
	if ix.LicenseValid("L-1", day(-45)) {
		t.Error("L-1 in force before its active record, while the revocation was in effect")
	}
	if _, ok := ix.LicenseAt("L-2", now); ok {
		t.Error("L-2 survives its tombstone")
	}
	if m, ok := ix.MeterAt("MS-A", day(100)); !ok || m.FeederID != "F-1" {
		t.Errorf("MS-A at day 100: %+v", m)
	}
	if m, ok := ix.MeterAt("MS-A", now); !ok || m.FeederID != "F-2" {
		t.Errorf("MS-A now: %+v", m)
	}

	from, to := day(-100), day(400)
	if got, want := ix.CapacityChanges("A", from, to), live.CapacityChanges("A", from, to); !reflect.DeepEqual(got, want) {
		t.Errorf("capacity changes: loaded %+v, live %+v", got, want)
	}
	for _, at := range []time.Time{day(20), day(130), now} {
		if got, want := ix.Stats(at), live.Stats(at); !reflect.DeepEqual(got, want) {
			t.Errorf("stats at %s: loaded %+v, live %+v", at, got, want)
		}
	}
	if got, want := ix.Check(now), live.Check(now); !reflect.DeepEqual(got, want) {
		t.Errorf("checks: loaded %d alerts, live %d", len(got), len(want))
	}
}

// TestLoadRegistryNational checks a generated registry survives the round
// trip through ClickHouse: same stats as the records applied directly.
func TestLoadRegistryNational(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := testenv.Store(t)
	ls, rs, ms := registry.GenerateNational(7, 20_000, 12)
	b := &schemas.Batch{Licenses: ls, Rigs: rs, Meters: ms}
	for i := range b.Rigs {
		b.Rigs[i].Version = uint64(i + 1)
	}
	if err := s.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	direct := newIndex(t)
	if err := direct.ApplyBatch(b); err != nil {
		t.Fatal(err)
	}
	ix := newIndex(t)
	start := time.Now()
	if err := s.LoadRegistry(ctx, ix); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d rigs in %v", len(rs), time.Since(start))
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got, want := ix.Stats(at), direct.Stats(at)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stats after the round trip:\n got %+v\nwant %+v", got, want)
	}
	if got.ActiveRigs != len(rs) {
		t.Errorf("%d active rigs, want %d", got.ActiveRigs, len(rs))
	}
	for _, site := range []string{"SITE-0001", "SITE-0050"} {
		if g, w := ix.CapacityChanges(site, day(0), at), direct.CapacityChanges(site, day(0), at); !reflect.DeepEqual(g, w) {
			t.Errorf("%s capacity changes differ: %d vs %d steps", site, len(g), len(w))
		}
	}
	if n := len(ix.Check(at)); n != 0 {
		t.Errorf("a clean generated registry raises %d alerts after the round trip", n)
	}
}

// TestLoadRegistryScope checks that a look-up's narrowed load answers what
// a full load answers about the rigs, sites and operators it names, with a
// rig moving between sites and operators, a decommission, a tombstone and a
// site meter moving site, and that it loads less.
func TestLoadRegistryScope(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := testenv.Store(t)
	ls, rs, ms := registry.GenerateNational(11, 5_000, 6)
	b := &schemas.Batch{Licenses: ls, Rigs: rs, Meters: ms}
	var mover, gone, dead schemas.Rig
	for _, r := range rs {
		switch {
		case mover.RigID == "":
			mover = r
		case gone.RigID == "" && r.SiteID == mover.SiteID:
			gone = r
		case dead.RigID == "" && r.SiteID != mover.SiteID && r.OperatorID != mover.OperatorID:
			dead = r
		}
	}
	if gone.RigID == "" || dead.RigID == "" {
		t.Fatal("the generated registry has no second rig at the mover's site, or no rig elsewhere")
	}
	// The mover goes to dead's site and operator, dead is decommissioned,
	// gone is deleted, and a meter of the mover's site moves to dead's.
	moved := mover
	moved.SiteID, moved.OperatorID, moved.LicenseID, moved.UpdatedAt = dead.SiteID, dead.OperatorID, dead.LicenseID, mover.UpdatedAt.AddDate(0, 0, 20)
	decom := dead
	decom.Status, decom.UpdatedAt = schemas.RigDecommissioned, dead.UpdatedAt.AddDate(0, 0, 30)
	b.Rigs = append(b.Rigs, moved, decom)
	if err := schemas.Tombstone(schemas.Rigs, gone.RigID, gone.UpdatedAt.AddDate(0, 0, 10), b); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.SiteID == mover.SiteID {
			m.SiteID, m.UpdatedAt = dead.SiteID, m.UpdatedAt.AddDate(0, 0, 25)
			b.Meters = append(b.Meters, m)
			break
		}
	}
	for i := range b.Rigs {
		b.Rigs[i].Version = uint64(i + 1)
	}
	for i := range b.Meters {
		b.Meters[i].Version = uint64(i + 1)
	}
	if err := s.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	full := newIndex(t)
	if err := s.LoadRegistry(ctx, full); err != nil {
		t.Fatal(err)
	}
	scoped := func(sc store.Scope) *registry.Index {
		ix := newIndex(t)
		if err := s.LoadRegistryScope(ctx, ix, sc); err != nil {
			t.Fatal(err)
		}
		return ix
	}
	last := mover.UpdatedAt.AddDate(0, 0, 60)
	times := []time.Time{mover.UpdatedAt.Add(-time.Hour), mover.UpdatedAt, moved.UpdatedAt, decom.UpdatedAt, last}
	same := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: scoped load %.300v, full load %.300v", what, fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want))
		}
	}
	narrower := func(what string, ix *registry.Index) {
		t.Helper()
		if got, all := ix.Stats(last).ActiveRigs, full.Stats(last).ActiveRigs; got >= all {
			t.Errorf("%s: the scoped load holds %d active rigs, the full one %d", what, got, all)
		}
	}

	for _, site := range []string{mover.SiteID, dead.SiteID} {
		ix := scoped(store.SiteScope(site))
		narrower(site, ix)
		same(site+" history", ix.SiteHistory(site), full.SiteHistory(site))
		same(site+" capacity changes", ix.CapacityChanges(site, times[0].AddDate(-1, 0, 0), last), full.CapacityChanges(site, times[0].AddDate(-1, 0, 0), last))
		for _, at := range times {
			same(site+" fleet", ix.SiteFleet(site, at), full.SiteFleet(site, at))
			same(site+" meters", ix.SiteMeters(site, at), full.SiteMeters(site, at))
			o1, ok1 := ix.SiteOblast(site, at)
			o2, ok2 := full.SiteOblast(site, at)
			same(site+" oblast", []any{o1, ok1}, []any{o2, ok2})
		}
	}
	for _, r := range []schemas.Rig{mover, gone, dead} {
		for _, q := range []string{r.RigID, r.Serial} {
			ix := scoped(store.RigScope(q))
			narrower(q, ix)
			same(q+" history", ix.RigHistory(r.RigID), full.RigHistory(r.RigID))
			same(q+" by serial", ix.RigBySerial(r.Serial), full.RigBySerial(r.Serial))
			for _, at := range times {
				r1, ok1 := ix.RigAt(r.RigID, at)
				r2, ok2 := full.RigAt(r.RigID, at)
				same(q+" at", []any{r1, ok1}, []any{r2, ok2})
				same(q+" licence valid", ix.LicenseValid(r.LicenseID, at), full.LicenseValid(r.LicenseID, at))
			}
		}
	}
	for _, op := range []string{mover.OperatorID, dead.OperatorID} {
		ix := scoped(store.OperatorScope(op))
		narrower(op, ix)
		for _, at := range times {
			same(op+" fleet", ix.OperatorFleet(op, at), full.OperatorFleet(op, at))
		}
	}
}
