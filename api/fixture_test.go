package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/notify"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// fixture is a real ClickHouse database with a small grid: feeder F1 with a
// head meter, a mining site S1 (two registered rigs, 6.5 kW) drawing
// 6.8 kW, two households, and 5 kWh per interval taken before any meter.
type fixture struct {
	st     *store.Store
	ix     *registry.Index
	srv    *httptest.Server
	b      *notify.Broadcaster
	tokens map[string]string // role -> token
	admin  string            // bootstrap admin token
}

var (
	t0  = time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	t1  = t0.Add(48 * time.Hour)
	f64 = func(v float64) *float64 { return &v }
)

func fixtureBatch() *schemas.Batch {
	b := &schemas.Batch{}
	upd := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b.Licenses = []schemas.License{{LicenseID: "L1", OperatorID: "OP1", OperatorName: "Qazaq Hash", Status: "active",
		ValidFrom: upd, ValidTo: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), LicensedCapacityKW: f64(100), UpdatedAt: upd}}
	b.Rigs = []schemas.Rig{
		{RigID: "R1", Serial: "SN-0001", Model: "Antminer S19j Pro", RatedPowerW: 3250, OperatorID: "OP1", LicenseID: "L1", SiteID: "S1", Status: "active", UpdatedAt: upd},
		{RigID: "R2", Serial: "SN-0002", Model: "Antminer S19j Pro", RatedPowerW: 3250, OperatorID: "OP1", LicenseID: "L1", SiteID: "S1", Status: "active", UpdatedAt: upd},
	}
	b.Meters = []schemas.Meter{
		{MeterID: "MH", FeederID: "F1", Role: "feeder_head", Class: "residential", Oblast: "East Kazakhstan", UpdatedAt: upd},
		{MeterID: "MS", FeederID: "F1", Role: "site", Class: "mining", SiteID: "S1", Oblast: "East Kazakhstan", UpdatedAt: upd},
		{MeterID: "MC1", FeederID: "F1", Role: "customer", Class: "residential", Oblast: "East Kazakhstan", UpdatedAt: upd},
		{MeterID: "MC2", FeederID: "F1", Role: "customer", Class: "residential", Oblast: "East Kazakhstan", UpdatedAt: upd},
		{MeterID: "MH2", FeederID: "F2", Role: "feeder_head", Class: "residential", Oblast: "Almaty", UpdatedAt: upd},
		{MeterID: "MC3", FeederID: "F2", Role: "customer", Class: "residential", Oblast: "Almaty", UpdatedAt: upd},
	}
	for ts := t0.Add(15 * time.Minute); !ts.After(t1); ts = ts.Add(15 * time.Minute) {
		for _, r := range []struct {
			id  string
			kwh float64
		}{{"MH", 1.7 + 0.2 + 0.2 + 5}, {"MS", 1.7}, {"MC1", 0.2}, {"MC2", 0.2}, {"MH2", 0.5}, {"MC3", 0.48}} {
			b.Readings = append(b.Readings, schemas.Reading{MeterID: r.id, TS: ts, KWh: r.kwh, IntervalS: 900, Meta: schemas.Meta{Version: 1}})
		}
	}
	b.Purchases = []schemas.Purchase{{TxID: "TX1", OperatorID: "OP1", SiteID: "S1", MWh: 0.1, TS: t0.Add(time.Hour), Meta: schemas.Meta{Version: 1}}}
	return b
}

func fixtureAlerts() []schemas.Alert {
	mk := func(id, kind, sev, et, eid string) schemas.Alert {
		return schemas.Alert{AlertID: id, Kind: kind, Severity: sev, EntityType: et, EntityID: eid, FeederID: "F1", Oblast: "East Kazakhstan",
			WindowStart: t0, WindowEnd: t1, DetectedAt: t0.Add(time.Hour), ObservedKWh: f64(1100), ExpectedKWh: f64(600), ExcessKWh: f64(500),
			EstimatedValueKZT: f64(12500), Score: 3.5, Summary: "feeder F1 head meter measures 40% more than its meters", Evidence: map[string]any{"imbalance_fraction": 0.45, "loss_allowance": 0.08}}
	}
	a1 := mk("A1", schemas.KindFeederImbalance, "critical", "feeder", "F1")
	a2 := mk("A2", schemas.KindOverCapacity, "warning", "meter", "MS")
	a2.MeterID, a2.SiteID, a2.OperatorID, a2.LicenseID = "MS", "S1", "OP1", "L1"
	a3 := mk("A3", schemas.KindPurchaseShortfall, "info", "operator", "OP1")
	a3.OperatorID = "OP1"
	return []schemas.Alert{a1, a2, a3}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t)
	b := fixtureBatch()
	if err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	ix, err := registry.New(registry.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.ApplyBatch(b); err != nil {
		t.Fatal(err)
	}
	if opened, err := st.UpsertAlerts(ctx, fixtureAlerts()); err != nil || len(opened) != 3 {
		t.Fatalf("UpsertAlerts: %d opened, %v", len(opened), err)
	}
	f := &fixture{st: st, ix: ix, b: notify.NewBroadcaster(0), tokens: map[string]string{}, admin: "static-admin-" + strings.Repeat("x", 20)}
	for _, role := range store.Roles {
		tok, _, err := st.CreateToken(ctx, "t-"+role, role)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[role] = tok
	}
	h, err := NewHandler(Deps{Store: st, Registry: ix, Broadcaster: f.b, AdminToken: f.admin, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// do sends a request with token (none if empty) and returns status and body.
func (f *fixture) do(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp.StatusCode, ""
	}
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}
