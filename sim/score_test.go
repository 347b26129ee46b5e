package sim

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// alertFor returns an alert that finds t exactly, detected after delay.
func alertFor(t Truth, id string, delay time.Duration) schemas.Alert {
	a := schemas.Alert{AlertID: id, Kind: t.Kind, EntityType: t.EntityType, EntityID: t.EntityID,
		WindowStart: t.Start, WindowEnd: t.End, DetectedAt: t.Start.Add(delay)}
	if t.ExcessKWh != nil {
		a.ExcessKWh = f64(*t.ExcessKWh)
	}
	if len(t.Suspects) > 0 {
		var sm []schemas.SuspectMeter
		for _, id := range t.Suspects {
			sm = append(sm, schemas.SuspectMeter{MeterID: id, Score: 1})
		}
		a.Evidence = map[string]any{"suspect_meters": sm}
	}
	return a
}

func TestScore(t *testing.T) {
	truth := newScenario(t, Config{Seed: 11, Feeders: 30, Days: 7}).Truth()
	byKind := map[string][]Truth{}
	for _, tr := range truth {
		byKind[tr.Kind] = append(byKind[tr.Kind], tr)
	}
	perfect := func() []schemas.Alert {
		var as []schemas.Alert
		for i, tr := range truth {
			as = append(as, alertFor(tr, tr.Kind+string(rune('a'+i)), 2*time.Hour))
		}
		return as
	}
	// halfWrong finds every other incident and adds as many alerts on wrong entities.
	halfWrong := func() []schemas.Alert {
		var as []schemas.Alert
		for _, ts := range byKind {
			for i, tr := range ts {
				if i%2 == 0 {
					a := alertFor(tr, "", time.Hour)
					if a.ExcessKWh != nil {
						*a.ExcessKWh *= 1.1
					}
					as = append(as, a)
				}
				if i%2 == 0 {
					a := alertFor(tr, "", time.Hour)
					a.EntityID = "NOT-" + tr.EntityID
					as = append(as, a)
				}
			}
		}
		return as
	}
	related := func() []schemas.Alert {
		var as []schemas.Alert
		for _, tr := range truth {
			a := alertFor(tr, "", 0)
			if len(tr.Related) > 0 {
				a.EntityID = tr.Related[len(tr.Related)-1]
			}
			as = append(as, a)
		}
		return as
	}
	// late alerts: windows after each incident ended match nothing.
	late := func() []schemas.Alert {
		var as []schemas.Alert
		for _, tr := range truth {
			a := alertFor(tr, "", 0)
			a.WindowStart, a.WindowEnd, a.DetectedAt = tr.End.Add(time.Hour), tr.End.Add(2*time.Hour), tr.End.Add(2*time.Hour)
			as = append(as, a)
		}
		return as
	}
	for _, tc := range []struct {
		name              string
		alerts            []schemas.Alert
		recall, precision float64
		ttd               time.Duration
		energy            float64
	}{
		{"perfect", perfect(), 1, 1, 2 * time.Hour, 0},
		{"perfect twice", append(perfect(), perfect()...), 1, 1, 2 * time.Hour, 0},
		{"half wrong", halfWrong(), 0.5, 0.5, time.Hour, 0.1},
		{"related entities", related(), 1, 1, 0, 0},
		{"outside window", late(), 0, 0, 0, 0},
		{"none", nil, 0, 1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Score(truth, tc.alerts, ScoreOptions{})
			for _, kind := range gridKinds {
				k := rep.Kind(kind)
				n := len(byKind[kind])
				if k.Incidents != n || n == 0 {
					t.Fatalf("%s: %d incidents, truth has %d", kind, k.Incidents, n)
				}
				recall, precision := tc.recall, tc.precision
				if tc.name == "half wrong" { // odd counts round up
					recall = float64((n+1)/2) / float64(n)
				}
				if !near(k.Recall, recall) || !near(k.Precision, precision) {
					t.Errorf("%s: recall %.3f precision %.3f, want %.3f %.3f", kind, k.Recall, k.Precision, recall, precision)
				}
				if k.Detected > 0 && k.MedianTTD != tc.ttd {
					t.Errorf("%s: median ttd %s, want %s", kind, k.MedianTTD, tc.ttd)
				}
				if energyKinds[kind] && k.Detected > 0 && !near(k.MedianEnergyError, tc.energy) {
					t.Errorf("%s: energy error %.4f, want %.4f", kind, k.MedianEnergyError, tc.energy)
				}
			}
			passes := len(rep.Failures()) == 0
			if passes != (tc.name == "perfect" || tc.name == "perfect twice" || tc.name == "related entities") {
				t.Errorf("failures %v", rep.Failures())
			}
			var buf bytes.Buffer
			if err := rep.Format(&buf); err != nil || !strings.Contains(buf.String(), schemas.KindFeederImbalance) {
				t.Errorf("Format: %v\n%s", err, buf.String())
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestLoadAlerts(t *testing.T) {
	truth := newScenario(t, Config{Seed: 12, Feeders: 10, Days: 3}).Truth()
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	var buf bytes.Buffer
	for i, tr := range truth {
		b, _ := json.Marshal(alertFor(tr, tr.EntityID+tr.Kind, time.Duration(i)*time.Minute))
		buf.Write(append(b, '\n'))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	as, err := LoadAlerts(path)
	if err != nil || len(as) != len(truth) {
		t.Fatalf("LoadAlerts: %d alerts, %v", len(as), err)
	}
	rep := Score(truth, as, ScoreOptions{})
	if f := rep.Failures(); len(f) > 0 {
		t.Errorf("round-tripped perfect alerts fail: %v", f)
	}
}
