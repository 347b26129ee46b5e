package store_test

import (
	"context"
	"errors"
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
