package main

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// nationalFixture is a generated national registry replayed into its own
// ClickHouse database, and the flags that point rigwatch at it.
type nationalFixture struct {
	ls    []schemas.License
	rs    []schemas.Rig
	ms    []schemas.Meter
	flags []string
}

func replayNational(t *testing.T, rigs, operators int) nationalFixture {
	t.Helper()
	addr, db := testenv.ClickHouseAddr(t), testenv.DatabaseName()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, store.Config{Addr: addr, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = st.DropDatabase(context.Background())
		st.Close()
	})
	f := nationalFixture{flags: []string{"--clickhouse", addr, "--clickhouse-database", db, "--data-dir", t.TempDir(), "--log-level", "error"}}
	f.ls, f.rs, f.ms = registry.GenerateNational(11, rigs, operators)
	dir := t.TempDir()
	testenv.WriteRegistryCSV(t, dir, f.ls, f.rs, f.ms)
	sum, err := ingest.Replay(ctx, ingest.ReplayConfig{Dir: dir}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sum.Streams {
		if s.Rejected > 0 {
			t.Fatalf("%d %s rejected: %v", s.Rejected, s.Stream, s.Reasons)
		}
	}
	return f
}

// TestRegistryStatsMatchesInput replays a generated national registry and
// checks `registry stats --json` against counts made directly from the
// generated records.
func TestRegistryStatsMatchesInput(t *testing.T) {
	f := replayNational(t, 20_000, 30)

	// Independent counts: every generated rig is active; a site's oblast is
	// that of its site meter.
	type agg struct {
		rigs int
		w    float64
	}
	siteOblast := map[string]string{}
	for _, m := range f.ms {
		if m.Role == schemas.RoleSite {
			siteOblast[m.SiteID] = m.Oblast
		}
	}
	byOblast, byOp, byModel := map[string]agg{}, map[string]agg{}, map[string]agg{}
	sites := map[string]bool{}
	var active int
	var totalW float64
	for _, r := range f.rs {
		if r.Status != schemas.RigActive {
			continue
		}
		active++
		totalW += r.RatedPowerW
		sites[r.SiteID] = true
		for _, a := range []struct {
			m   map[string]agg
			key string
		}{{byOblast, siteOblast[r.SiteID]}, {byOp, r.OperatorID}, {byModel, r.Model}} {
			g := a.m[a.key]
			g.rigs++
			g.w += r.RatedPowerW
			a.m[a.key] = g
		}
	}
	licByStatus := map[string]int{}
	ops := map[string]bool{}
	for _, l := range f.ls {
		licByStatus[l.Status]++
		ops[l.OperatorID] = true
	}

	out, err := run(t, append([]string{"registry", "stats", "--json"}, f.flags...)...)
	if err != nil {
		t.Fatalf("registry stats: %v\n%s", err, out)
	}
	var st registry.Stats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	near := func(mw, w float64) bool { return math.Abs(mw-w/1e6) < 1e-6 }
	if st.ActiveRigs != active || !near(st.RegisteredMW, totalW) || st.Sites != len(sites) ||
		st.Operators != len(ops) || st.OperatorsLicensed != len(ops) {
		t.Errorf("totals: %d rigs, %v MW, %d sites, %d operators (%d licensed); want %d, %v MW, %d, %d",
			st.ActiveRigs, st.RegisteredMW, st.Sites, st.Operators, st.OperatorsLicensed, active, totalW/1e6, len(sites), len(ops))
	}
	if len(st.Licenses) != len(licByStatus) {
		t.Errorf("licences by status %v, want %v", st.Licenses, licByStatus)
	}
	for s, n := range licByStatus {
		if st.Licenses[s] != n {
			t.Errorf("licences %s: %d, want %d", s, st.Licenses[s], n)
		}
	}
	check := func(what string, got []registry.Group, want map[string]agg) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("by %s: %d groups, want %d", what, len(got), len(want))
		}
		for _, g := range got {
			w, ok := want[g.Key]
			if !ok || g.Rigs != w.rigs || !near(g.MW, w.w) {
				t.Errorf("by %s %q: %d rigs, %v MW; want %d, %v MW", what, g.Key, g.Rigs, g.MW, w.rigs, w.w/1e6)
			}
		}
	}
	check("oblast", st.ByOblast, byOblast)
	check("operator", st.ByOperator, byOp)
	check("model", st.ByModel, byModel)

	// The table form carries the same totals.
	out, err = run(t, append([]string{"registry", "stats"}, f.flags...)...)
	if err != nil {
		t.Fatalf("registry stats: %v", err)
	}
	for _, want := range []string{"active rigs:  20,000 at", "by oblast", "by operator", "by model", "OP-001"} {
		if !strings.Contains(out, want) {
			t.Errorf("registry stats output lacks %q:\n%s", want, out)
		}
	}
}

// TestRegistryLookups runs the investigator look-ups and the registry-backed
// calculator against a replayed registry.
func TestRegistryLookups(t *testing.T) {
	f := replayNational(t, 3_000, 5)
	r := f.rs[41]

	for _, q := range []string{r.RigID, r.Serial} {
		out, err := run(t, append([]string{"registry", "rig", q, "--json"}, f.flags...)...)
		if err != nil {
			t.Fatalf("registry rig %s: %v\n%s", q, err, out)
		}
		var rep rigReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.History) != 1 || len(rep.Current) != 1 || rep.Current[0].RigID != r.RigID || rep.Current[0].SiteID != r.SiteID ||
			!rep.History[0].UpdatedAt.Equal(r.UpdatedAt) || len(rep.Licences) != 1 || !rep.Licences[0].InForce {
			t.Errorf("registry rig %s: %+v", q, rep)
		}
	}
	out, err := run(t, append([]string{"registry", "rig", r.Serial}, f.flags...)...)
	if err != nil || !strings.Contains(out, r.RigID+": active at "+r.SiteID) || !strings.Contains(out, "history (1 versions)") {
		t.Errorf("registry rig %s: %v\n%s", r.Serial, err, out)
	}
	// Before its registration the rig is history only.
	out, err = run(t, append([]string{"registry", "rig", r.RigID, "--at", r.UpdatedAt.Add(-time.Second).Format(time.RFC3339)}, f.flags...)...)
	if err != nil || !strings.Contains(out, "not registered at this time") {
		t.Errorf("registry rig before registration: %v\n%s", err, out)
	}
	if _, err := run(t, append([]string{"registry", "rig", "RIG-NOPE"}, f.flags...)...); err == nil || exitCode(err) != 1 {
		t.Errorf("unknown rig: %v", err)
	}

	var siteW float64
	var siteRigs int
	var last time.Time
	for _, x := range f.rs {
		if x.SiteID == r.SiteID {
			siteW += x.RatedPowerW
			siteRigs++
			if x.UpdatedAt.After(last) {
				last = x.UpdatedAt
			}
		}
	}
	out, err = run(t, append([]string{"registry", "site", r.SiteID, "--json"}, f.flags...)...)
	if err != nil {
		t.Fatalf("registry site: %v\n%s", err, out)
	}
	var rep siteReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.ActiveRigs != siteRigs || math.Abs(rep.CapacityW-siteW) > 1e-6 || len(rep.Meters) != 1 || rep.Oblast == "" ||
		len(rep.History) != siteRigs || len(rep.Licences) != 1 || len(rep.Capacity) == 0 {
		t.Errorf("registry site %s: %d rigs, %v W, %d meters, %d versions, %d licences; want %d rigs, %v W",
			r.SiteID, rep.ActiveRigs, rep.CapacityW, len(rep.Meters), len(rep.History), len(rep.Licences), siteRigs, siteW)
	}
	if c := rep.Capacity[len(rep.Capacity)-1]; math.Abs(c.CapacityW-siteW) > 1e-6 || c.Rigs != siteRigs || !c.At.Equal(last) {
		t.Errorf("last capacity change %+v, want %v W from %s", c, siteW, last)
	}
	out, err = run(t, append([]string{"registry", "site", r.SiteID}, f.flags...)...)
	if err != nil || !strings.Contains(out, "capacity over time") || !strings.Contains(out, "MS-") {
		t.Errorf("registry site table: %v\n%s", err, out)
	}
	if _, err := run(t, append([]string{"registry", "site", "SITE-NOPE"}, f.flags...)...); err == nil || exitCode(err) != 1 {
		t.Errorf("unknown site: %v", err)
	}

	// calc over the registry: the site's fleet, and an operator's.
	out, err = run(t, append([]string{"calc", "--site", r.SiteID, "--json"}, f.flags...)...)
	if err != nil {
		t.Fatalf("calc --site: %v\n%s", err, out)
	}
	var res registry.CalcResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Machines != siteRigs || math.Abs(res.TotalPowerKW-siteW/1000) > 1e-9 || res.Transactions != int64(math.Ceil(siteW*24*30/1e6-1e-9)) {
		t.Errorf("calc --site: %+v; want %d machines, %v kW", res, siteRigs, siteW/1000)
	}
	var opW float64
	var opRigs int
	for _, x := range f.rs {
		if x.OperatorID == "OP-002" {
			opW += x.RatedPowerW
			opRigs++
		}
	}
	out, err = run(t, append([]string{"calc", "--operator", "OP-002", "--tariff", "20"}, f.flags...)...)
	if err != nil || !strings.Contains(out, "operator OP-002") || !strings.Contains(out, num(opW/1000, 3)+" kW") || !strings.Contains(out, num(float64(opRigs), 0)+" x ") {
		t.Errorf("calc --operator: %v\n%s", err, out)
	}
	if _, err := run(t, append([]string{"calc", "--operator", "OP-999"}, f.flags...)...); exitCode(err) != 2 {
		t.Errorf("calc for an operator without rigs: %v, want a usage error", err)
	}
}
