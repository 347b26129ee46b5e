package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// TestUnknownMetersReport: readings from a meter not in the registry are
// good input, stored, and listed by `registry unknown-meters` with their
// count, energy and span; a registered meter is not listed.
func TestUnknownMetersReport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr, db := testenv.ClickHouseAddr(t), testenv.DatabaseName()
	st, err := store.Open(ctx, store.Config{Addr: addr, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = st.DropDatabase(context.Background())
		st.Close()
	})
	flags := []string{"--clickhouse", addr, "--clickhouse-database", db, "--data-dir", t.TempDir(), "--log-level", "error"}

	out, err := run(t, append([]string{"registry", "unknown-meters"}, flags...)...)
	if err != nil || !strings.Contains(out, "every meter with readings is in the registry") {
		t.Fatalf("empty store: %v\n%s", err, out)
	}

	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("meters.csv", "meter_id,feeder_id,role,class,updated_at\nKNOWN,F1,customer,residential,2025-09-01T00:00:00Z\n")
	// NEW-A: 3 readings (one delivered twice, one corrected); NEW-B: 1.
	write("readings.csv", "meter_id,ts,kwh\n"+
		"KNOWN,2025-10-01T00:15:00Z,1\n"+
		"NEW-A,2025-10-01T00:15:00Z,1.5\n"+
		"NEW-A,2025-10-01T00:30:00Z,2\n"+
		"NEW-A,2025-10-01T00:30:00Z,2\n"+
		"NEW-A,2025-10-01T00:45:00Z,9\n"+
		"NEW-A,2025-10-01T00:45:00Z,2.5\n"+
		"NEW-B,2025-10-02T00:00:00Z,4\n")
	sum, err := ingest.Replay(ctx, ingest.ReplayConfig{Dir: dir}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sum.Streams {
		if s.Rejected != 0 {
			t.Fatalf("%s: %d rejected (%v): readings of unknown meters are good input", s.Stream, s.Rejected, s.Reasons)
		}
	}

	out, err = run(t, append([]string{"registry", "unknown-meters", "--json"}, flags...)...)
	if err != nil {
		t.Fatalf("unknown-meters: %v\n%s", err, out)
	}
	var got []store.UnknownMeter
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := []store.UnknownMeter{
		{MeterID: "NEW-A", Readings: 3, KWh: 6, FirstTS: time.Date(2025, 10, 1, 0, 15, 0, 0, time.UTC), LastTS: time.Date(2025, 10, 1, 0, 45, 0, 0, time.UTC)},
		{MeterID: "NEW-B", Readings: 1, KWh: 4, FirstTS: time.Date(2025, 10, 2, 0, 0, 0, 0, time.UTC), LastTS: time.Date(2025, 10, 2, 0, 0, 0, 0, time.UTC)},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}

	out, err = run(t, append([]string{"registry", "unknown-meters", "--limit", "1"}, flags...)...)
	if err != nil || !strings.Contains(out, "NEW-A") || strings.Contains(out, "NEW-B") || strings.Contains(out, "KNOWN") {
		t.Errorf("--limit 1: %v\n%s", err, out)
	}
	if _, err := run(t, append([]string{"registry", "unknown-meters", "--limit", "-1"}, flags...)...); exitCode(err) != 2 {
		t.Errorf("--limit -1: %v, want a usage error", err)
	}
}

// TestCountUnknownMeters: the ingest hook counts stored readings whose meter
// the live registry did not know at the reading's time, after calling the
// hook it wraps.
func TestCountUnknownMeters(t *testing.T) {
	ix, err := registry.New(registry.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.ApplyMeter(schemas.Meter{MeterID: "KNOWN", FeederID: "F1", Role: schemas.RoleCustomer, Class: schemas.ClassResidential,
		UpdatedAt: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC), Meta: schemas.Meta{Version: 1}}); err != nil {
		t.Fatal(err)
	}
	called := false
	hook := countUnknownMeters(ix.UnknownReadings, func(*schemas.Batch) { called = true })
	before := testutil.ToFloat64(unknownMeterReadings)
	at := func(h int) time.Time { return time.Date(2025, 10, 1, h, 0, 0, 0, time.UTC) }
	hook(&schemas.Batch{Readings: []schemas.Reading{
		{MeterID: "KNOWN", TS: at(1)},
		{MeterID: "NEW", TS: at(1)},
		{MeterID: "NEW", TS: at(2)},
		{MeterID: "KNOWN", TS: at(0).Add(-time.Hour)}, // before it was registered
	}})
	if d := testutil.ToFloat64(unknownMeterReadings) - before; d != 3 || !called {
		t.Errorf("counted %v unknown-meter readings (wrapped hook called: %v), want 3", d, called)
	}
}
