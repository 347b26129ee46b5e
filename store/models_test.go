package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
)

// TestLossModels: the model of a feeder at t is the one judged for the
// latest day at or before t, at that day's latest version; a re-evaluation
// of a day replaces its model.
func TestLossModels(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	d0 := time.Date(2025, 10, 1, 19, 0, 0, 0, time.UTC)
	m := func(feeder string, day time.Time, share float64) schemas.LossModel {
		return schemas.LossModel{FeederID: feeder, Day: day, A: share, Share: share, FitShare: share, Source: "own_fit", Hours: 48, TypicalKWh: 10}
	}
	if err := st.WriteLossModels(ctx, []schemas.LossModel{m("F1", d0, 0.03), m("F1", d0.Add(24*time.Hour), 0.04), m("F2", d0, 0.02)}); err != nil {
		t.Fatal(err)
	}
	// The second day judged again.
	if err := st.WriteLossModels(ctx, []schemas.LossModel{m("F1", d0.Add(24*time.Hour), 0.05)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at     time.Time
		ids    []string
		f1, f2 float64 // 0: absent
	}{
		{d0.Add(-time.Hour), nil, 0, 0},
		{d0.Add(time.Hour), nil, 0.03, 0.02},
		{d0.Add(30 * time.Hour), nil, 0.05, 0.02},
		{d0.Add(30 * time.Hour), []string{"F2"}, 0, 0.02},
	} {
		got, err := st.LossModelsAt(ctx, tc.ids, tc.at)
		if err != nil {
			t.Fatal(err)
		}
		if got["F1"].Share != tc.f1 || got["F2"].Share != tc.f2 || (tc.f1 > 0 && got["F1"].Source != "own_fit") {
			t.Errorf("at %s %v: %+v, want F1 %v F2 %v", tc.at, tc.ids, got, tc.f1, tc.f2)
		}
	}
}
