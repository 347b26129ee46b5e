package sim

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

func newScenario(t testing.TB, cfg Config) *Scenario {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{IntervalS: 1800}, true},
		{Config{IntervalS: 700}, false},
		{Config{Days: -1}, false},
		{Config{Incidents: []string{"theft"}}, false},
		{Config{Incidents: []string{}}, true},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", tc.cfg, err, tc.ok)
		}
	}
}

func TestDeterminism(t *testing.T) {
	cfg := Config{Seed: 7, Feeders: 8, Days: 2}
	a, b := newScenario(t, cfg), newScenario(t, cfg)
	for _, step := range []int{0, 1, 57, a.Steps() - 1} {
		r1 := slices.Clone(a.ReadingsAt(step, nil))
		r2 := a.ReadingsAt(step, make([]schemas.Reading, 3))
		r3 := b.ReadingsAt(step, nil)
		if len(r1) == 0 || !reflect.DeepEqual(r1, r2) || !reflect.DeepEqual(r1, r3) {
			t.Fatalf("step %d: readings differ between calls or scenarios", step)
		}
	}
	if !reflect.DeepEqual(a.Truth(), b.Truth()) || !reflect.DeepEqual(a.Rigs(), b.Rigs()) || !reflect.DeepEqual(a.Purchases(), b.Purchases()) {
		t.Fatal("same seed gave different registry, purchases or truth")
	}
	d1, d2 := t.TempDir(), t.TempDir()
	for _, d := range []string{d1, d2} {
		if _, err := WriteDir(context.Background(), newScenario(t, cfg), d, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := filepath.Glob(filepath.Join(d1, "*"))
	for _, n := range names {
		x, _ := os.ReadFile(n)
		y, err := os.ReadFile(filepath.Join(d2, filepath.Base(n)))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed", filepath.Base(n))
		}
	}
	if other := newScenario(t, Config{Seed: 8, Feeders: 8, Days: 2}); reflect.DeepEqual(other.ReadingsAt(5, nil), a.ReadingsAt(5, nil)) {
		t.Error("different seeds gave the same readings")
	}
}

// gridKinds are the incident kinds of PresetGrid: every kind but
// data_quality, whose stuck meters PresetOffices plants.
var gridKinds = slices.DeleteFunc(slices.Clone(schemas.AlertKinds), func(k string) bool { return k == schemas.KindDataQuality })

func TestIncidents(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		kinds []string
	}{
		{"clean", Config{Seed: 1, Incidents: []string{}}, nil},
		{"all", Config{Seed: 1}, gridKinds},
		{"all other seed", Config{Seed: 99, Feeders: 25, Days: 7}, gridKinds},
		{"theft", Config{Seed: 3, Preset: PresetTheft}, []string{schemas.KindFeederImbalance}},
		{"theft clean", Config{Seed: 3, Preset: PresetTheft, Incidents: []string{}}, nil},
		{"offices", Config{Seed: 4, Preset: PresetOffices, Days: 120}, []string{schemas.KindDataQuality}},
		{"one kind", Config{Seed: 2, Incidents: []string{schemas.KindFeederImbalance}}, []string{schemas.KindFeederImbalance}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScenario(t, tc.cfg)
			got := map[string]int{}
			for _, tr := range s.Truth() {
				got[tr.Kind]++
				if tr.EntityID == "" || tr.EntityType == "" || tr.Start.IsZero() || tr.End.Before(tr.Start) {
					t.Errorf("incomplete truth %+v", tr)
				}
				if energyKinds[tr.Kind] && (tr.ExcessKWh == nil || *tr.ExcessKWh <= 0) {
					t.Errorf("%s on %s has no excess energy", tr.Kind, tr.EntityID)
				}
			}
			for _, k := range tc.kinds {
				if got[k] == 0 {
					t.Errorf("no %s incident", k)
				}
			}
			if len(got) != len(tc.kinds) {
				t.Errorf("kinds %v, want %v", got, tc.kinds)
			}
			if len(tc.kinds) == 0 {
				checkCleanRegistry(t, s)
			}
		})
	}
}

// checkCleanRegistry checks that a clean scenario breaks no registry rule at
// any registry change, and that no purchase is oversized or short.
func checkCleanRegistry(t *testing.T, s *Scenario) {
	t.Helper()
	lic := map[string]schemas.License{}
	rigs := map[string]schemas.Rig{}
	active := map[string]int{} // serial -> active rigs
	li, ri := 0, 0
	ls, rs := s.Licenses(), s.Rigs()
	for li < len(ls) || ri < len(rs) {
		if ri >= len(rs) || li < len(ls) && !ls[li].UpdatedAt.After(rs[ri].UpdatedAt) {
			lic[ls[li].LicenseID] = ls[li]
			li++
			continue
		}
		r := rs[ri]
		ri++
		if old, ok := rigs[r.RigID]; ok && old.Status == schemas.RigActive {
			active[old.Serial]--
		}
		rigs[r.RigID] = r
		if r.Status != schemas.RigActive {
			continue
		}
		if active[r.Serial]++; active[r.Serial] > 1 {
			t.Fatalf("serial %s active twice, the second on %s", r.Serial, r.RigID)
		}
		l := lic[r.LicenseID]
		if l.Status != schemas.LicenseActive || !r.UpdatedAt.Before(l.ValidTo) {
			t.Fatalf("rig %s active under licence %s %s valid to %s", r.RigID, l.LicenseID, l.Status, l.ValidTo)
		}
	}
	for _, l := range lic {
		if l.Status != schemas.LicenseActive && l.LicenseID[len(l.LicenseID)-4] != '9' {
			t.Errorf("licence %s ends %s", l.LicenseID, l.Status)
		}
	}
	for _, p := range s.Purchases() {
		if p.MWh > schemas.MaxPurchaseMWh {
			t.Fatalf("purchase %s of %v MWh", p.TxID, p.MWh)
		}
	}
}

func TestFeederBalance(t *testing.T) {
	s := newScenario(t, Config{Seed: 3, Feeders: 30, Days: 3})
	stolenSeen := false
	for _, step := range []int{0, 1, 40, 41, 150, 287} {
		rs := s.ReadingsAt(step, nil)
		final := map[string]float64{}
		for _, r := range rs {
			final[r.MeterID] = r.KWh // later records replace earlier ones
		}
		for fi := 0; fi < s.Feeders(); fi++ {
			head, metered, loss, stolen, ok := s.FeederBalance(fi, step)
			if !ok {
				continue
			}
			if math.Abs(head-(metered+loss+stolen)) > 1e-9*head {
				t.Fatalf("feeder %d step %d: head %v != %v + %v + %v", fi, step, head, metered, loss, stolen)
			}
			f := &s.feeders[fi]
			lossless := f.lossA == 0 && f.lossB == 0 && f.lossC == 0
			if share := loss / (metered + 1e-9); metered > 1 && (lossless && share != 0 || !lossless && (share < 0.005 || share > 0.12)) {
				t.Errorf("feeder %d step %d: loss share %.3f", fi, step, share)
			}
			stolenSeen = stolenSeen || stolen > 0
			// The meters read what their customers use, unless one
			// under-reports or a block of them is served by a neighbour.
			var sum float64
			complete := len(f.moves) == 0
			for mi := f.head + 1; mi < f.end; mi++ {
				v, ok := final[s.meters[mi].id]
				complete = complete && ok && s.meters[mi].attack < 0
				sum += v
			}
			if v, ok := final[s.meters[f.head].id]; ok && math.Abs(v-head) > 0.0006 {
				t.Errorf("feeder %d step %d: head reading %v, want %v", fi, step, v, head)
			}
			if n := float64(f.end - f.head); complete && math.Abs(sum-metered) > 0.0006*n {
				t.Errorf("feeder %d step %d: meters read %v, truly used %v", fi, step, sum, metered)
			}
		}
	}
	if !stolenSeen {
		t.Error("no diversion seen")
	}
}

func TestNoise(t *testing.T) {
	s := newScenario(t, Config{Seed: 4, Feeders: 20, Days: 2})
	var rows, dups, corr, long int
	meters := len(s.Meters())
	seenMissing := false
	for step := 0; step < s.Steps(); step++ {
		rs := s.ReadingsAt(step, nil)
		seen := map[string]schemas.Reading{}
		for _, r := range rs {
			rows++
			if r.IntervalS == 1800 {
				long++
			}
			if p, ok := seen[r.MeterID]; ok {
				if p.KWh == r.KWh {
					dups++
				} else {
					corr++
				}
			}
			seen[r.MeterID] = r
			if r.KWh < 0 || !r.TS.Equal(s.Start().Add(s.Interval()*(1+timeDuration(step)))) {
				t.Fatalf("bad reading %+v at step %d", r, step)
			}
		}
		seenMissing = seenMissing || len(seen) < meters-2
	}
	if dups == 0 || corr == 0 || long == 0 || !seenMissing {
		t.Errorf("noise missing: %d duplicates, %d corrections, %d 1800 s readings, gaps %v", dups, corr, long, seenMissing)
	}
	t.Logf("%d rows, %d duplicates, %d corrections, %d long", rows, dups, corr, long)
}

func TestWriteDirCSV(t *testing.T) {
	dir := t.TempDir()
	s := newScenario(t, Config{Seed: 5, Feeders: 6, Days: 2})
	sum, err := WriteDir(context.Background(), s, dir, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		LicensesFile:    {"license_id", "operator_id", "operator_name", "status", "valid_from", "valid_to", "licensed_capacity_kw", "updated_at"},
		MetersFile:      {"meter_id", "feeder_id", "role", "class", "site_id", "oblast", "updated_at"},
		RigsFile:        {"rig_id", "serial", "model", "rated_power_w", "hashrate_ths", "operator_id", "license_id", "site_id", "status", "updated_at"},
		PurchasesFile:   {"tx_id", "operator_id", "site_id", "mwh", "price_kzt_per_mwh", "ts"},
		ReadingsFile(0): {"meter_id", "ts", "kwh", "interval_s"},
		ReadingsFile(1): {"meter_id", "ts", "kwh", "interval_s"},
	}
	var readings int64
	for name, header := range want {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = f
		if filepath.Ext(name) == ".gz" {
			if r, err = gzip.NewReader(f); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := csv.NewReader(r).ReadAll()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(recs[0], header) || len(recs) < 2 {
			t.Errorf("%s: header %v, %d rows", name, recs[0], len(recs))
		}
		if filepath.Ext(name) == ".gz" {
			readings += int64(len(recs) - 1)
		}
	}
	if readings != sum.Readings {
		t.Errorf("files hold %d readings, summary says %d", readings, sum.Readings)
	}
	truth, err := LoadTruth(filepath.Join(dir, TruthFile))
	if err != nil || !reflect.DeepEqual(truth, s.Truth()) {
		t.Errorf("truth.jsonl does not round-trip: %v", err)
	}
}

func timeDuration(n int) time.Duration { return time.Duration(n) }
