package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// investigationFixture stores a feeder F1 (head meter, a site meter and a
// household, 3 kWh per interval unaccounted) and an alert on it.
func investigationFixture(t *testing.T) ([]string, *store.Store) {
	t.Helper()
	return investigationFixtureAt(t, time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC))
}

// investigationFixtureAt is investigationFixture with its day of readings
// starting at t0.
func investigationFixtureAt(t *testing.T, t0 time.Time) ([]string, *store.Store) {
	t.Helper()
	addr, db := testenv.ClickHouseAddr(t), testenv.DatabaseName()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, store.Config{Addr: addr, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = st.DropDatabase(context.Background())
		st.Close()
	})
	upd := t0.AddDate(0, -9, 0)
	b := &schemas.Batch{
		Licenses: []schemas.License{{LicenseID: "L1", OperatorID: "OP1", Status: "active", ValidFrom: upd, ValidTo: upd.AddDate(2, 0, 0), UpdatedAt: upd}},
		Rigs:     []schemas.Rig{{RigID: "R1", Serial: "SN1", RatedPowerW: 3250, OperatorID: "OP1", LicenseID: "L1", SiteID: "S1", Status: "active", UpdatedAt: upd}},
		Meters: []schemas.Meter{
			{MeterID: "MH", FeederID: "F1", Role: "feeder_head", Class: "residential", Oblast: "East Kazakhstan", UpdatedAt: upd},
			{MeterID: "MS", FeederID: "F1", Role: "site", Class: "mining", SiteID: "S1", UpdatedAt: upd},
			{MeterID: "MC", FeederID: "F1", Role: "customer", Class: "residential", UpdatedAt: upd},
		},
	}
	for ts := t0.Add(15 * time.Minute); !ts.After(t0.Add(24 * time.Hour)); ts = ts.Add(15 * time.Minute) {
		b.Readings = append(b.Readings, schemas.Reading{MeterID: "MH", TS: ts, KWh: 4, IntervalS: 900},
			schemas.Reading{MeterID: "MS", TS: ts, KWh: 0.8, IntervalS: 900}, schemas.Reading{MeterID: "MC", TS: ts, KWh: 0.2, IntervalS: 900})
	}
	if err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	ex := 288.0
	if _, err := st.UpsertAlerts(ctx, []schemas.Alert{{AlertID: "fi-F1", Kind: schemas.KindFeederImbalance, Severity: "critical", EntityType: "feeder", EntityID: "F1", FeederID: "F1",
		WindowStart: t0, WindowEnd: t0.Add(24 * time.Hour), ExcessKWh: &ex, Score: 2, Summary: "F1 loses 75%", Evidence: map[string]any{"loss": 0.08}}}); err != nil {
		t.Fatal(err)
	}
	return []string{"--clickhouse", addr, "--clickhouse-database", db, "--data-dir", t.TempDir(), "--log-level", "error"}, st
}

func TestInvestigatorCommands(t *testing.T) {
	flags, st := investigationFixture(t)
	cmd := func(args ...string) (string, error) { return run(t, append(args, flags...)...) }

	out, err := cmd("feeders", "--top", "5", "--since", "30d", "--json")
	if err != nil || !strings.Contains(out, `"feeder_id": "F1"`) || !strings.Contains(out, `"unaccounted_kwh": 288`) {
		t.Fatalf("feeders --json: %v\n%s", err, out)
	}
	if out, err = cmd("feeders", "--top", "5"); err != nil || !strings.Contains(out, "F1") {
		t.Errorf("feeders table: %v\n%s", err, out)
	}
	if out, err = cmd("feeder", "F1", "--since", "2d", "--csv"); err != nil || !strings.HasPrefix(out, "hour,head_kwh,meters_kwh,residual_kwh,loss_band_kwh,beyond_kwh\n") || strings.Count(out, "\n") != 25 {
		t.Errorf("feeder --csv: %v\n%s", err, out)
	}
	if out, err = cmd("feeder", "F1"); err != nil || !strings.Contains(out, "fi-F1") || !strings.Contains(out, "MS") {
		t.Errorf("feeder table: %v\n%s", err, out)
	}
	if _, err = cmd("feeder", "F404"); exitCode(err) != 1 {
		t.Errorf("unknown feeder: %v", err)
	}
	out, err = cmd("alerts", "--kind", "feeder_imbalance", "--status", "open", "--json")
	var as []schemas.Alert
	if err != nil || json.Unmarshal([]byte(out), &as) != nil || len(as) != 1 || as[0].AlertID != "fi-F1" {
		t.Errorf("alerts --json: %v\n%s", err, out)
	}
	if out, err = cmd("alerts", "--status", "acknowledged", "--csv"); err != nil || strings.Count(out, "\n") != 1 {
		t.Errorf("alerts --csv (none acknowledged): %v\n%s", err, out)
	}
	for _, bad := range [][]string{{"alerts", "--kind", "x' OR 1=1 --"}, {"alerts", "--json", "--csv"}, {"feeders", "--since", "forever"}, {"feeders", "--top", "0"}, {"token", "create", "--name", "a b", "--role", "admin"}, {"evidence", "fi-F1"}} {
		if _, err := cmd(bad...); exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", bad, exitCode(err), err)
		}
	}

	// Evidence: export, verify, tamper.
	dir := filepath.Join(t.TempDir(), "ev")
	if out, err = cmd("evidence", "fi-F1", "--out", dir); err != nil {
		t.Fatalf("evidence: %v\n%s", err, out)
	}
	if out, err = cmd("evidence", "verify", dir); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	p := filepath.Join(dir, "report.md")
	b, _ := os.ReadFile(p)
	b[10] ^= 0x20
	os.WriteFile(p, b, 0o644)
	_, err = cmd("evidence", "verify", dir)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "report.md") {
		t.Errorf("tampered verify: exit %d: %v", exitCode(err), err)
	}

	// Tokens.
	out, err = cmd("token", "create", "--name", "ops-1", "--role", "operator")
	secret, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	if err != nil || !strings.HasPrefix(secret, store.TokenPrefix) {
		t.Fatalf("token create: %v %q", err, out)
	}
	if out, err = cmd("token", "list"); err != nil || !strings.Contains(out, "ops-1") || strings.Contains(out, secret) {
		t.Errorf("token list: %v\n%s", err, out)
	}
	if _, err := st.LookupToken(context.Background(), secret); err != nil {
		t.Errorf("created token does not authenticate: %v", err)
	}
	if _, err = cmd("token", "revoke", "ops-1"); err != nil {
		t.Errorf("revoke: %v", err)
	}
	if _, err := st.LookupToken(context.Background(), secret); err == nil {
		t.Errorf("revoked token still authenticates")
	}
	// Every query above is in the audit trail.
	es, err := st.ListAudit(context.Background(), store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, e := range es {
		actions[e.Action]++
	}
	for _, a := range []string{"rank feeders", "read feeder", "list alerts", "export evidence", "create token", "revoke token"} {
		if actions[a] == 0 {
			t.Errorf("no audit row for %q: %v", a, actions)
		}
	}
}

// TestInvestigatorWindowFollowsData: with readings two days ahead of the
// wall clock (a demo's accelerated event time), `feeders` and `feeder`
// default to windows that end at the newest reading, and `feeder --alert`
// shows the alert's window with a day before it.
func TestInvestigatorWindowFollowsData(t *testing.T) {
	t0 := time.Now().UTC().Truncate(time.Hour).Add(48 * time.Hour)
	end := t0.Add(24 * time.Hour)
	flags, _ := investigationFixtureAt(t, t0)
	cmd := func(args ...string) (string, error) { return run(t, append(args, flags...)...) }
	var w struct {
		From, To time.Time
		Hourly   []json.RawMessage
		Top      []json.RawMessage
	}
	read := func(args ...string) {
		t.Helper()
		out, err := cmd(args...)
		w.Hourly, w.Top = nil, nil
		if err != nil || json.Unmarshal([]byte(out), &w) != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	read("feeder", "F1", "--json")
	if !w.To.Equal(end) || !w.From.Equal(end.Add(-7*24*time.Hour)) || len(w.Hourly) != 24 {
		t.Errorf("feeder: %s..%s, %d hours; want ..%s (the newest reading), 24 hours", w.From, w.To, len(w.Hourly), end)
	}
	read("feeders", "--json")
	if !w.To.Equal(end) || len(w.Top) != 1 {
		t.Errorf("feeders: ..%s, %d feeders; want ..%s, 1", w.To, len(w.Top), end)
	}
	read("feeder", "F1", "--alert", "fi-F1", "--json")
	if !w.From.Equal(t0.Add(-24*time.Hour)) || !w.To.Equal(end) || len(w.Hourly) != 24 {
		t.Errorf("feeder --alert: %s..%s, %d hours; want %s..%s", w.From, w.To, len(w.Hourly), t0.Add(-24*time.Hour), end)
	}
	out, err := cmd("alerts", "--since", "1d", "--json")
	if err != nil || !strings.Contains(out, `"fi-F1"`) {
		t.Errorf("alerts --since 1d (back from the newest reading): %v\n%s", err, out)
	}
	if _, err := cmd("feeder", "F1", "--alert", "fi-F1", "--since", "2d"); exitCode(err) != 2 {
		t.Errorf("--alert with --since: %v, want a usage error", err)
	}
}
