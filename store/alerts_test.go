package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

func testAlert(id string, end time.Time, excess float64) schemas.Alert {
	return schemas.Alert{AlertID: id, Kind: schemas.KindOverCapacity, Severity: "warning", EntityType: "meter", EntityID: "M1", MeterID: "M1",
		WindowStart: end.Add(-time.Hour), WindowEnd: end, ExcessKWh: &excess, Score: excess, Summary: "over", Evidence: map[string]any{"n": 1.0}}
}

func TestAlertLifecycle(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	opened, err := st.UpsertAlerts(ctx, []schemas.Alert{testAlert("a", t0, 1), testAlert("b", t0, 2)})
	if err != nil || len(opened) != 2 || opened[0].Status != schemas.StatusOpen {
		t.Fatalf("first upsert: %v %v", opened, err)
	}
	if opened, _ = st.UpsertAlerts(ctx, []schemas.Alert{testAlert("a", t0, 1)}); len(opened) != 0 {
		t.Errorf("same finding again opened %d", len(opened))
	}
	steps := []struct {
		id, to string
		ok     bool
	}{
		{"a", schemas.StatusAcknowledged, true}, {"a", schemas.StatusAcknowledged, false}, {"a", schemas.StatusOpen, false},
		{"a", schemas.StatusResolved, true}, {"a", schemas.StatusAcknowledged, false}, {"b", schemas.StatusResolved, true}, {"b", "bogus", false},
	}
	for _, s := range steps {
		_, err := st.SetAlertStatus(ctx, s.id, s.to, "n", "tester")
		if s.ok != (err == nil) || (err != nil && !errors.Is(err, store.ErrTransition)) {
			t.Errorf("%s -> %s: %v", s.id, s.to, err)
		}
	}
	if _, err := st.SetAlertStatus(ctx, "zz", schemas.StatusResolved, "", "t"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown alert: %v", err)
	}
	ev, err := st.AlertEvents(ctx, "a")
	if err != nil || len(ev) != 2 || ev[1].To != schemas.StatusResolved || ev[0].Who != "tester" {
		t.Errorf("events: %+v %v", ev, err)
	}

	// The detector keeps updating while a person acknowledges: the person's
	// status survives every interleaving.
	if _, err := st.UpsertAlerts(ctx, []schemas.Alert{testAlert("c", t0, 1)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			if _, err := st.UpsertAlerts(ctx, []schemas.Alert{testAlert("c", t0.Add(time.Duration(i)*time.Minute), float64(i))}); err != nil {
				t.Error(err)
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	if _, err := st.SetAlertStatus(ctx, "c", schemas.StatusAcknowledged, "on it", "op"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	c, err := st.GetAlert(ctx, "c")
	if err != nil || c.Status != schemas.StatusAcknowledged || c.Note != "on it" || *c.ExcessKWh != 19 {
		t.Errorf("after concurrent updates: %s %q %v %v", c.Status, c.Note, *c.ExcessKWh, err)
	}
	list, err := st.ListAlerts(ctx, store.AlertFilter{Status: schemas.StatusResolved, Order: "-score"})
	if err != nil || len(list) != 2 || list[0].AlertID != "b" {
		t.Errorf("list resolved: %v %v", list, err)
	}
	if _, err := st.ListAlerts(ctx, store.AlertFilter{Order: "score; DROP TABLE alerts"}); err == nil {
		t.Error("an order outside the allow-list was accepted")
	}
}

func TestTokens(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	secret, tok, err := st.CreateToken(ctx, "alice", store.RoleInvestigator)
	if err != nil || tok.Role != store.RoleInvestigator {
		t.Fatal(err)
	}
	if got, err := st.LookupToken(ctx, secret); err != nil || got.Name != "alice" {
		t.Errorf("lookup: %+v %v", got, err)
	}
	if _, _, err := st.CreateToken(ctx, "alice", store.RoleAdmin); !errors.Is(err, store.ErrTokenExists) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := st.RevokeToken(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LookupToken(ctx, secret); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoked token: %v", err)
	}
	if _, _, err := st.CreateToken(ctx, "alice", store.RoleOperator); err != nil {
		t.Errorf("reuse of a revoked name: %v", err)
	}
	if _, err := st.LookupToken(ctx, secret); err == nil {
		t.Error("the old secret works again after the name was reused")
	}
}

// TestAcknowledgementsStand: one store plays the elected detector and
// writes 1,000 span updates, 50 evaluations each moving 20 findings on,
// while another (a second process's
// connection) acknowledges or resolves each of them, spread over the
// detector's run: every person's change stands, read back through either
// store and, once folded, in the alerts table itself as users query it.
func TestAcknowledgementsStand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	leader := testenv.Store(t)
	other, err := store.Open(ctx, store.Config{Addr: testenv.ClickHouseAddr(t), Database: leader.Database()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	const n, updates = 20, 50 // n x updates span updates
	id := func(i int) string { return fmt.Sprintf("span-%02d", i) }
	findings := func(u int) []schemas.Alert {
		var as []schemas.Alert
		for i := 0; i < n; i++ {
			as = append(as, testAlert(id(i), t0.Add(time.Duration(u)*time.Minute), float64(u)))
		}
		return as
	}
	if _, err := leader.UpsertAlerts(ctx, findings(0)); err != nil {
		t.Fatal(err)
	}
	progress := make(chan int, updates)
	go func() {
		defer close(progress)
		for u := 1; u <= updates; u++ {
			if _, err := leader.UpsertAlerts(ctx, findings(u)); err != nil {
				t.Error(err)
				return
			}
			progress <- u
		}
	}()
	want := map[string]string{}
	next := 0
	for u := range progress {
		// One person's change every updates/(n+1) evaluations.
		if next < n && u >= (next+1)*updates/(n+1) {
			to := schemas.StatusAcknowledged
			if next%4 == 0 {
				to = schemas.StatusResolved
			}
			if _, err := other.SetAlertStatus(ctx, id(next), to, "note "+id(next), "op"); err != nil {
				t.Fatal(err)
			}
			want[id(next)] = to
			next++
		}
	}
	if next != n {
		t.Fatalf("only %d of %d changes made", next, n)
	}
	check := func(how string, got map[string]schemas.Alert) {
		t.Helper()
		bad := 0
		for i := 0; i < n; i++ {
			a := got[id(i)]
			if a.Status != want[id(i)] || a.Note != "note "+id(i) {
				if bad++; bad <= 5 {
					t.Errorf("%s: %s is %s %q, want %s", how, id(i), a.Status, a.Note, want[id(i)])
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d people's changes lost", how, bad, n)
		}
	}
	for name, st := range map[string]*store.Store{"leader": leader, "other": other} {
		list, err := st.ListAlerts(ctx, store.AlertFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]schemas.Alert{}
		for _, a := range list {
			got[a.AlertID] = a
			if *a.ExcessKWh != updates {
				t.Errorf("%s: %s carries update %v, want the last, %d", name, a.AlertID, *a.ExcessKWh, updates)
			}
		}
		check("read through the "+name, got)
		if len(list) != n {
			t.Errorf("%s lists %d alerts, want %d", name, len(list), n)
		}
	}
	if _, err := other.FoldAlertState(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := leader.Conn().Query(ctx, "SELECT alert_id, status, note FROM "+leader.Database()+".alerts FINAL")
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]schemas.Alert{}
	for rows.Next() {
		var a schemas.Alert
		if err := rows.Scan(&a.AlertID, &a.Status, &a.Note); err != nil {
			t.Fatal(err)
		}
		table[a.AlertID] = a
	}
	rows.Close()
	check("SELECT FROM alerts FINAL after FoldAlertState", table)
	if again, err := other.FoldAlertState(ctx); err != nil || again != 0 {
		t.Errorf("a second fold rewrote %d rows (%v)", again, err)
	}
}

// TestCloseAlerts: the detector closes findings without touching people's
// state; closing is idempotent, and the flag reads back.
func TestCloseAlerts(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	if _, err := st.UpsertAlerts(ctx, []schemas.Alert{testAlert("x", t0, 1), testAlert("y", t0, 2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetAlertStatus(ctx, "x", schemas.StatusAcknowledged, "seen", "op"); err != nil {
		t.Fatal(err)
	}
	closed, err := st.CloseAlerts(ctx, []string{"x", "x", "nope"})
	if err != nil || len(closed) != 1 || !closed[0].Closed || closed[0].Status != schemas.StatusAcknowledged {
		t.Fatalf("CloseAlerts: %+v %v", closed, err)
	}
	if again, err := st.CloseAlerts(ctx, []string{"x"}); err != nil || len(again) != 0 {
		t.Errorf("closing again changed %d (%v)", len(again), err)
	}
	x, err := st.GetAlert(ctx, "x")
	if err != nil || !x.Closed || x.Status != schemas.StatusAcknowledged || x.Note != "seen" {
		t.Errorf("x after closing: %+v %v", x, err)
	}
	y, err := st.GetAlert(ctx, "y")
	if err != nil || y.Closed {
		t.Errorf("y closed too: %+v %v", y, err)
	}
	// A finding the detector writes closed reads back closed; one it
	// re-opens (same id, holding again) reads back open.
	a := testAlert("y", t0, 2)
	a.Closed = true
	if res, err := st.UpsertAlertsDetail(ctx, []schemas.Alert{a}); err != nil || len(res.Updated) != 1 {
		t.Fatalf("upsert closed: %+v %v", res, err)
	}
	if y, _ = st.GetAlert(ctx, "y"); !y.Closed {
		t.Error("y written closed reads back open")
	}
}
