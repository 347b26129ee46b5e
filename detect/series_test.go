package detect

import (
	"context"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

func TestMemSeriesLatestVersion(t *testing.T) {
	m := NewMemSeries()
	t0 := time.Date(2025, 10, 1, 0, 15, 0, 0, time.UTC)
	m.AddReadings(
		schemas.Reading{MeterID: "A", TS: t0.Add(15 * time.Minute), KWh: 2},
		schemas.Reading{MeterID: "A", TS: t0, KWh: 9},
		schemas.Reading{MeterID: "A", TS: t0, KWh: 1},                                 // correction
		schemas.Reading{MeterID: "A", TS: t0, KWh: 7, Meta: schemas.Meta{Version: 0}}, // same version: later wins
		schemas.Reading{MeterID: "A", TS: t0, KWh: 3, Meta: schemas.Meta{Version: 5}}, // newer
		schemas.Reading{MeterID: "A", TS: t0, KWh: 8, Meta: schemas.Meta{Version: 4}}, // older: ignored
		schemas.Reading{MeterID: "B", TS: t0, KWh: 4, IntervalS: 1800},
	)
	got := map[string][]float64{}
	err := m.MeterReadings(context.Background(), t0.Add(-time.Hour), t0.Add(time.Hour), func(id string, ts []time.Time, kwh []float64, iv []int32) error {
		got[id] = append(got[id], kwh...)
		if id == "B" && iv[0] != 1800 || id == "A" && iv[0] != 900 {
			t.Errorf("%s: interval %v", id, iv)
		}
		return nil
	})
	if err != nil || len(got["A"]) != 2 || got["A"][0] != 3 || got["A"][1] != 2 || got["B"][0] != 4 || m.Len() != 3 {
		t.Fatalf("got %v, %v, len %d", got, err, m.Len())
	}
	// (from, to]: the reading ending exactly at from is out, at to is in.
	n := 0
	m.MeterReadings(context.Background(), t0, t0.Add(15*time.Minute), func(_ string, ts []time.Time, _ []float64, _ []int32) error {
		n += len(ts)
		return nil
	})
	if n != 1 {
		t.Errorf("%d readings in (t0, t0+15m], want 1", n)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{Lookback: time.Hour}, {CoolingAllowance: -1}, {Location: time.FixedZone("x", 1800)}, {OverCapacityHours: -2}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
}
