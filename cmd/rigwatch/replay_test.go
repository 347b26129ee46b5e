package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/store"
)

// TestReplayViaKafka sends the sample through the embedded broker and the
// consumers: the store ends up exactly as a file replay leaves it.
func TestReplayViaKafka(t *testing.T) {
	addr := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	dir := t.TempDir()
	if err := writeSample(dir); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "replay", dir, "--via-kafka", "--json", "--clickhouse", addr, "--clickhouse-database", db,
		"--data-dir", t.TempDir(), "--flush-interval", "200ms", "--log-level", "error")
	if err != nil {
		t.Fatalf("replay --via-kafka: %v\n%s", err, out)
	}
	st, err := store.Open(context.Background(), store.Config{Addr: addr, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	counts, err := st.TableCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tot, err := st.ReadingTotals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tot.Rows != 37 || fmt.Sprintf("%.3f", tot.KWh) != "106.084" {
		t.Errorf("stored %+v, want 37 readings, 106.084 kWh", tot)
	}
	if counts["rejects"] != 15 || counts["licenses"] != 2 || counts["rigs"] != 5 || counts["meters"] != 4 || counts["purchases"] != 3 {
		t.Errorf("table counts %v", counts)
	}
}

// TestReplayTwice replays the bundled sample (duplicates, a correction and
// bad rows in it) twice: exactly the distinct latest readings are stored,
// each bad row is rejected with its reason, and the second replay changes
// no count and no sum.
func TestReplayTwice(t *testing.T) {
	addr := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	dir := t.TempDir()
	if err := writeSample(dir); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	snapshot := func() (map[string]uint64, store.ReadingTotals) {
		st, err := store.Open(ctx, store.Config{Addr: addr, Database: db}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		c, err := st.TableCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r, err := st.ReadingTotals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c, r
	}
	var first map[string]uint64
	var firstTot store.ReadingTotals
	for round := 1; round <= 2; round++ {
		out, err := run(t, "replay", dir, "--json", "--clickhouse", addr, "--clickhouse-database", db, "--log-level", "error")
		if err != nil {
			t.Fatalf("replay %d: %v\n%s", round, err, out)
		}
		var sum ingest.ReplaySummary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("summary is not JSON: %v\n%s", err, out)
		}
		rej := map[string]int64{}
		for _, s := range sum.Streams {
			rej[string(s.Stream)] = s.Rejected
		}
		wantRej := map[string]int64{"licenses": 1, "meters": 1, "rigs": 2, "purchases": 1, "readings": 10}
		if fmt.Sprint(rej) != fmt.Sprint(wantRej) {
			t.Errorf("replay %d rejected %v, want %v", round, rej, wantRej)
		}
		counts, tot := snapshot()
		if tot.Rows != 37 || tot.Meters != 4 || fmt.Sprintf("%.3f", tot.KWh) != "106.084" {
			t.Errorf("replay %d stored %+v, want 37 readings of 4 meters, 106.084 kWh", round, tot)
		}
		if counts["rejects"] != 15 || counts["licenses"] != 2 || counts["rigs"] != 5 || counts["meters"] != 4 || counts["purchases"] != 3 {
			t.Errorf("replay %d table counts %v", round, counts)
		}
		if round == 1 {
			first, firstTot = counts, tot
		} else if fmt.Sprint(counts) != fmt.Sprint(first) || tot != firstTot {
			t.Errorf("second replay changed the store: %v %+v, first %v %+v", counts, tot, first, firstTot)
		}
	}
}

// TestReplayRegistryOnly replays registry files without readings: the
// summary says there were no readings instead of a detection over year 1,
// and the registry rules still run on the registry as its newest record
// left it.
func TestReplayRegistryOnly(t *testing.T) {
	addr := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	dir := t.TempDir()
	files := map[string]string{
		"licenses.csv": "license_id,operator_id,status,valid_from,valid_to,updated_at\n" +
			"KZ-L-001,OP-01,active,2024-01-01T00:00:00Z,2027-01-01T00:00:00Z,2024-01-01T00:00:00Z\n",
		// Two active rigs with one serial: a registry_violation.
		"rigs.jsonl": `{"rig_id":"R-1","serial":"SN-1","model":"Antminer S19j Pro","rated_power_w":3068,"operator_id":"OP-01","license_id":"KZ-L-001","site_id":"SITE-01","status":"active","updated_at":"2024-02-01T00:00:00Z"}` + "\n" +
			`{"rig_id":"R-2","serial":"SN-1","model":"Antminer S19j Pro","rated_power_w":3068,"operator_id":"OP-01","license_id":"KZ-L-001","site_id":"SITE-01","status":"active","updated_at":"2024-03-01T00:00:00Z"}` + "\n",
		"meters.csv": "meter_id,feeder_id,role,class,site_id,updated_at\nS-1,F-1,site,mining,SITE-01,2024-01-15T00:00:00Z\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"replay", dir, "--clickhouse", addr, "--clickhouse-database", db, "--log-level", "error"}
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if strings.Contains(out, "0001-01-01") || !strings.Contains(out, "no readings stored") ||
		!strings.Contains(out, "as of its newest record (2024-03-01T00:00:00Z): 1 alerts (registry_violation 1)") {
		t.Errorf("summary does not say there were no readings, or lacks the registry check:\n%s", out)
	}
	out, err = run(t, append(args, "--json")...)
	if err != nil {
		t.Fatalf("replay --json: %v\n%s", err, out)
	}
	var sum ingest.ReplaySummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out)
	}
	d := sum.Detection
	if d == nil || !d.NoReadings || d.RegistryAt == nil || !d.RegistryAt.Equal(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)) ||
		d.ByKind["registry_violation"] != 1 {
		t.Errorf("detection summary %+v, want no_readings, registry_at 2024-03-01 and one registry_violation", d)
	}

	// Nothing at all to judge.
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "purchases.csv"), []byte("tx_id,operator_id,mwh,ts\nT1,OP-01,0.5,2024-03-01T00:00:00Z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "replay", empty, "--clickhouse", addr, "--clickhouse-database", testenv.DatabaseName(), "--log-level", "error")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if strings.Contains(out, "0001-01-01") || !strings.Contains(out, "no readings and no registry records stored") {
		t.Errorf("summary of a replay without readings or registry:\n%s", out)
	}
}
