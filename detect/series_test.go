package detect

import (
	"context"
	"math/rand/v2"
	"slices"
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

// TestMemSeriesAnyOrder adds thousands of readings a meter, in order as a
// replay does and then again out of order, redelivered and corrected, and
// checks that each meter gives back its latest version of every reading,
// in time order, as a map of them says.
func TestMemSeriesAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2025, 10, 1, 0, 15, 0, 0, time.UTC)
	type key struct {
		id string
		k  int
	}
	type val struct {
		kwh float64
		ver uint64
	}
	want := map[key]val{}
	m := NewMemSeries()
	var all []schemas.Reading
	for k := range 3000 {
		for _, id := range []string{"A", "B", "C"} {
			if id == "B" && k%7 == 3 {
				continue // a gap
			}
			all = append(all, schemas.Reading{MeterID: id, TS: t0.Add(time.Duration(k) * 15 * time.Minute), KWh: float64(k), Meta: schemas.Meta{Version: uint64(k)}})
		}
	}
	m.AddReadings(all[:len(all)/2]...)
	late := slices.Clone(all[len(all)/2:])
	for i := range late {
		if i%5 == 0 {
			late[i].Version, late[i].KWh = late[i].Version+10_000, late[i].KWh+0.5 // a correction
		}
	}
	late = append(late, all[:400]...) // redelivered
	rng.Shuffle(len(late), func(i, j int) { late[i], late[j] = late[j], late[i] })
	for i := 0; i < len(late); i += 97 {
		m.AddReadings(late[i:min(i+97, len(late))]...)
	}
	for _, r := range append(all, late...) {
		k := key{r.MeterID, int(r.TS.Sub(t0) / (15 * time.Minute))}
		if v, ok := want[k]; !ok || r.Version >= v.ver {
			want[k] = val{r.KWh, r.Version}
		}
	}
	got := 0
	err := m.MeterReadings(context.Background(), t0.Add(-time.Second), t0.Add(3000*15*time.Minute), func(id string, ts []time.Time, kwh []float64, _ []int32) error {
		if !slices.IsSortedFunc(ts, func(a, b time.Time) int { return a.Compare(b) }) {
			t.Fatalf("%s: readings out of order", id)
		}
		for i := range ts {
			k := key{id, int(ts[i].Sub(t0) / (15 * time.Minute))}
			if v, ok := want[k]; !ok || v.kwh != kwh[i] {
				t.Fatalf("%s at %s: %v kWh, want %v (stored: %v)", id, ts[i], kwh[i], v.kwh, ok)
			}
			got++
		}
		return nil
	})
	if err != nil || got != len(want) || m.Len() != len(want) {
		t.Fatalf("%d readings back, %d held, want %d (%v)", got, m.Len(), len(want), err)
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
