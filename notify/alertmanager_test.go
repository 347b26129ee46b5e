package notify

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rigwatch/rigwatch/internal/localam"
	"github.com/rigwatch/rigwatch/schemas"
)

// table is a stand-in for the alerts table: a list that the test changes
// and the client reads through an AlertLister.
type table struct {
	mu     sync.Mutex
	alerts map[string]schemas.Alert
}

func (tb *table) put(as ...schemas.Alert) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.alerts == nil {
		tb.alerts = map[string]schemas.Alert{}
	}
	for _, a := range as {
		tb.alerts[a.AlertID] = a
	}
}

func (tb *table) list(_ context.Context, status string, offset, limit int) ([]schemas.Alert, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []schemas.Alert
	for _, a := range tb.alerts {
		if a.Status == status {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UpdatedAt.After(out[j].UpdatedAt) })
	if offset >= len(out) {
		return nil, nil
	}
	return out[offset:min(offset+limit, len(out))], nil
}

func amAlerts(now time.Time) []schemas.Alert {
	ex, kzt := 1234.5, 30863.0
	return []schemas.Alert{
		{AlertID: "fi-F-0042", Kind: schemas.KindFeederImbalance, Severity: schemas.SeverityCritical, EntityType: "feeder", EntityID: "F-0042",
			FeederID: "F-0042", Oblast: "East Kazakhstan", WindowStart: now.Add(-6 * time.Hour), WindowEnd: now.Add(-time.Hour), DetectedAt: now.Add(-4 * time.Hour),
			ExcessKWh: &ex, EstimatedValueKZT: &kzt, Summary: "Feeder F-0042 lost 1,235 kWh beyond its normal losses", Status: schemas.StatusOpen, UpdatedAt: now},
		{AlertID: "oc-M-7", Kind: schemas.KindOverCapacity, Severity: schemas.SeverityWarning, EntityType: "meter", EntityID: "M-7", MeterID: "M-7",
			SiteID: "S-7", OperatorID: "OP-7", Oblast: "Pavlodar", WindowStart: now.Add(-3 * time.Hour), WindowEnd: now.Add(-time.Hour),
			DetectedAt: now.Add(2 * time.Hour), // event time ahead of the clock, as in the demo
			Summary:    "Site S-7 draws 186 kW against 162.5 kW registered", Status: schemas.StatusAcknowledged, UpdatedAt: now},
		{AlertID: "ps-OP-9", Kind: schemas.KindPurchaseShortfall, Severity: schemas.SeverityInfo, EntityType: "operator", EntityID: "OP-9", OperatorID: "OP-9",
			WindowStart: now.Add(-30 * 24 * time.Hour), WindowEnd: now.Add(-29 * 24 * time.Hour), DetectedAt: now.Add(-29 * 24 * time.Hour),
			Summary: "closed a month ago", Status: schemas.StatusOpen, UpdatedAt: now},
	}
}

// TestAlertmanagerPostable checks what the client sends: labels, links,
// wall-clock startsAt never in the future, endsAt ahead while firing and
// set once resolved or closed.
func TestAlertmanagerPostable(t *testing.T) {
	now := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	m := &Alertmanager{URLs: []string{"http://am:9093"}, ExternalURL: "https://rigwatch.grid.kz/", Alerts: (&table{}).list, Resend: time.Minute}
	m.setup()
	as := amAlerts(now)
	resolved := as[0]
	resolved.Status, resolved.UpdatedAt = schemas.StatusResolved, now.Add(-5*time.Minute)
	closed := as[0]
	closed.AlertID, closed.WindowEnd = "fi-closed", now.Add(-50*time.Hour)
	flagged := as[0] // closed by the detector's flag, its window recent
	flagged.AlertID, flagged.Closed, flagged.UpdatedAt = "fi-flagged", true, now.Add(-2*time.Minute)
	stale := flagged // flagged closed long ago
	stale.AlertID, stale.UpdatedAt = "fi-stale", now.Add(-2*time.Hour)
	got := m.postable(append(as, resolved, closed, flagged, stale), now, now)
	if len(got) != 5 {
		t.Fatalf("%d postable alerts, want 5 (those closed long ago left out): %+v", len(got), got)
	}
	if f := got[4]; !f.EndsAt.Equal(now.Add(-2*time.Minute)) || f.Labels["alert_id"] != "fi-flagged" || f.Status() != model.AlertResolved {
		t.Errorf("flagged closed: %v endsAt %s, want resolved at the close", f.Labels, f.EndsAt)
	}
	fi := got[0]
	wantLabels := model.LabelSet{"alertname": "feeder_imbalance", "severity": "critical", "alert_id": "fi-F-0042", "oblast": "East Kazakhstan", "feeder_id": "F-0042"}
	if !fi.Labels.Equal(wantLabels) {
		t.Errorf("labels %v, want %v", fi.Labels, wantLabels)
	}
	if link := "https://rigwatch.grid.kz/#/alert/fi-F-0042"; fi.GeneratorURL != link || fi.Annotations["url"] != model.LabelValue(link) {
		t.Errorf("link %q / %q, want %s", fi.GeneratorURL, fi.Annotations["url"], link)
	}
	if fi.Annotations["summary"] == "" || fi.Annotations["excess_kwh"] != "1234.5" || fi.Annotations["window_start"] != "2025-10-08T06:00:00Z" {
		t.Errorf("annotations %v", fi.Annotations)
	}
	if !fi.StartsAt.Equal(now.Add(-4*time.Hour)) || !fi.EndsAt.Equal(now.Add(4*time.Minute)) {
		t.Errorf("firing alert: startsAt %s endsAt %s, want detected_at and now+4m", fi.StartsAt, fi.EndsAt)
	}
	oc := got[1]
	if !oc.StartsAt.Equal(now) || oc.Labels["site_id"] != "S-7" || oc.Labels["operator_id"] != "OP-7" {
		t.Errorf("alert detected ahead of the clock: startsAt %s (want now), labels %v", oc.StartsAt, oc.Labels)
	}
	if r := got[2]; !r.EndsAt.Equal(now.Add(-5*time.Minute)) || r.Status() != model.AlertResolved {
		t.Errorf("resolved alert: endsAt %s, want the resolve time", r.EndsAt)
	}
	if c := got[3]; !c.EndsAt.Equal(now) || c.Labels["alert_id"] != "fi-closed" {
		t.Errorf("closed alert: %v endsAt %s, want now", c.Labels, c.EndsAt)
	}
	for _, a := range got {
		if err := a.Validate(); err != nil {
			t.Errorf("%v: %v", a.Labels, err)
		}
	}
}

// TestAlertmanager pushes to Debian's Alertmanager: the alerts appear with
// their labels, a silence holds across re-sends, resolving and closing
// clear them at once (the client re-sends every minute and a firing alert
// would otherwise stay four), and a push lost while Alertmanager was down
// is repaired by the next re-send.
func TestAlertmanager(t *testing.T) {
	am := localam.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	now := time.Now().UTC()
	tb := &table{}
	tb.put(amAlerts(now)...)
	eventNow := now
	var mu sync.Mutex
	eventTime := func(context.Context) (time.Time, error) { mu.Lock(); defer mu.Unlock(); return eventNow, nil }
	updates := make(chan schemas.Alert, 8)
	m := &Alertmanager{URLs: []string{am.URL}, ExternalURL: "http://127.0.0.1:8080", Alerts: tb.list, Resend: time.Minute,
		Updates: updates, EventTime: eventTime}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	run := func(m *Alertmanager) {
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = m.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-done })
	}
	run(m)

	waitFor := func(what string, ok func(map[string]localam.Alert) bool) map[string]localam.Alert {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := am.Alerts(t)
			if ok(got) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Alertmanager holds %+v", what, got)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	got := waitFor("the open and acknowledged alerts", func(g map[string]localam.Alert) bool { return len(g) == 2 })
	fi := got["fi-F-0042"]
	if fi.Labels["alertname"] != "feeder_imbalance" || fi.Labels["severity"] != "critical" || fi.Labels["feeder_id"] != "F-0042" ||
		fi.Labels["oblast"] != "East Kazakhstan" || fi.Status.State != "active" || fi.Generator != "http://127.0.0.1:8080/#/alert/fi-F-0042" {
		t.Errorf("feeder_imbalance in Alertmanager: %+v", fi)
	}
	if d := fi.StartsAt.Sub(now.Add(-4 * time.Hour)); d > time.Second || d < -time.Second {
		t.Errorf("startsAt %s, want the detection time %s", fi.StartsAt, now.Add(-4*time.Hour))
	}
	if _, ok := got["ps-OP-9"]; ok {
		t.Error("an alert closed a month ago was pushed as firing")
	}

	// A silence on one alert holds through re-sends.
	sid := am.Silence(t, "alert_id", "oc-M-7")
	waitFor("the silenced alert suppressed", func(g map[string]localam.Alert) bool {
		return g["oc-M-7"].Status.State == "suppressed" && len(g["oc-M-7"].Status.SilencedBy) == 1 && g["oc-M-7"].Status.SilencedBy[0] == sid
	})
	for i := 0; i < 2; i++ {
		if err := m.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got = am.Alerts(t)
	if a := got["oc-M-7"]; a.Status.State != "suppressed" || got["fi-F-0042"].Status.State != "active" {
		t.Errorf("after re-sends: silenced alert %q, other %q; want suppressed and active", a.Status.State, got["fi-F-0042"].Status.State)
	}

	// A person resolves one: pushed at once through Updates.
	r := amAlerts(now)[0]
	r.Status, r.UpdatedAt = schemas.StatusResolved, time.Now().UTC()
	tb.put(r)
	updates <- r
	waitFor("the resolved alert gone", func(g map[string]localam.Alert) bool { _, ok := g["fi-F-0042"]; return !ok && len(g) == 1 })

	// The detector's finding on the other closes: its window ends more
	// than CloseAfter (48 h) before the data's newest event time.
	mu.Lock()
	eventNow = now.Add(50 * time.Hour)
	mu.Unlock()
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor("the closed alert gone", func(g map[string]localam.Alert) bool { return len(g) == 0 })

	// Alertmanager goes down and loses its state; a new alert opens
	// meanwhile. A client re-sending every 200 ms repairs it once
	// Alertmanager is back, without being told.
	fast := &Alertmanager{URLs: []string{am.URL}, Alerts: tb.list, Resend: 200 * time.Millisecond, EventTime: eventTime}
	am.Stop()
	fresh := amAlerts(now)[0]
	fresh.AlertID, fresh.WindowEnd = "fi-F-0043", now.Add(49*time.Hour)
	tb.put(fresh)
	if err := m.Sync(ctx); err == nil {
		t.Error("a push to a stopped Alertmanager reported no error")
	}
	run(fast)
	time.Sleep(3 * fast.Resend)
	am.Restart(t)
	waitFor("the alert opened during the outage", func(g map[string]localam.Alert) bool { _, ok := g["fi-F-0043"]; return ok })
}
