//go:build national

package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
	"github.com/rigwatch/rigwatch/store"
)

// TestNationalRun is `make bench-national` (not in CI: it takes the
// machine for the best part of an hour). A national fleet, 415,000 rigs of
// 84 operators and 1,000,000 meters (20,000 feeders of 50), streams one
// simulated day, 96M readings at 15 minutes, through the embedded broker
// (in this process) to a serve process (its own) and ClickHouse, with live
// detection, as fast as the machine goes. It reports the rate readings
// were produced and stored, the detection lag at the end, the peak RSS of
// serve, ClickHouse's disk per million readings, the rows detection read
// back per reading, and how fast the feeder ranking and a feeder, site and
// operator page answer. RIGWATCH_NATIONAL_FEEDERS scales it down
// (RIGWATCH_NATIONAL_FEEDERS=2000 is a tenth); RIGWATCH_NATIONAL_OUT names
// a JSON file for the figures.
// nationalMemLimit is serve's GOMEMLIMIT in the national run: the 2 GB
// target less room for what the runtime does not count (code, stacks
// outside the heap).
const nationalMemLimit = "1800MiB"

func TestNationalRun(t *testing.T) {
	feeders := 20000
	if v, err := strconv.Atoi(os.Getenv("RIGWATCH_NATIONAL_FEEDERS")); err == nil && v > 0 {
		feeders = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	s, err := sim.New(sim.Config{Seed: 1, Feeders: feeders, MetersPerFeeder: 50, Days: 1, Rigs: 415000, Operators: 84})
	if err != nil {
		t.Fatal(err)
	}
	meters := len(s.Meters())
	t.Logf("fleet: %d meters, %d rigs, %d licences; %d steps of %s", meters, len(s.Rigs()), len(s.Licenses()), s.Steps(), s.Interval())
	ch := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	const token = "national-bench-token"
	// serve runs as a deployment would, under a soft memory limit for the
	// Go runtime (GOMEMLIMIT, the runtime's own setting): the collector
	// works harder near it instead of letting the heap double between
	// collections. RIGWATCH_NATIONAL_MEMLIMIT changes it ("off": none).
	limit := cmp.Or(os.Getenv("RIGWATCH_NATIONAL_MEMLIMIT"), nationalMemLimit)
	if limit != "off" {
		t.Setenv("GOMEMLIMIT", limit)
	}
	p := startServe(t, brokers, ch, db, "serve", "--detect-every", "2s", "--detect-lateness", "0s", "--api-token", token)
	if !waitFor(2*time.Minute, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Fatal("serve never became ready")
	}
	peak := make(chan int64, 1)
	stopWatch := make(chan struct{})
	go func() { peak <- watchPeakRSS(p.cmd.Process.Pid, stopWatch) }()

	// Stream as fast as the machine goes: the registry first, then the day.
	str := &streamer{rt: &runtime{brokers: brokers, log: zap.NewNop()}, s: s, speed: 1e9, log: zap.NewNop()}
	began := time.Now()
	if err := str.run(ctx); err != nil {
		t.Fatalf("stream: %v", err)
	}
	produced := time.Since(began)
	t.Logf("produced %d registry records and a day of readings in %s", len(s.Rigs())+meters+len(s.Licenses()), produced.Round(time.Second))

	// Stored: every topic consumed to its end.
	if !waitFor(2*time.Hour, func() bool {
		for _, st := range schemas.Streams {
			if lag, err := ingest.GroupLag(ctx, brokers, nil, "rigwatch."+string(st), st.Topic()); err != nil || lag > 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("serve never stored everything produced")
	}
	ingested := time.Since(began)
	readings := metric(p.http, `rigwatch_ingest_stored_records_total{stream="readings"}`)
	newest := s.End()
	detected := time.Unix(int64(metric(p.http, "rigwatch_detect_event_time_seconds")), 0).UTC()
	if detected.Before(s.Start()) {
		detected = s.Start() // nothing evaluated yet
	}
	lagAtEnd := newest.Sub(detected)
	// and how long detection takes to reach the last hour
	caughtUp := time.Duration(-1)
	if waitFor(time.Hour, func() bool { return metric(p.http, "rigwatch_detect_event_time_seconds") >= float64(newest.Unix()) }) {
		caughtUp = time.Since(began) - ingested
	}
	// The lag at the end in event time: how long detection took, after the
	// last reading was stored, to cover the newest hour, at the run's pace
	// (the wall time ingest took per event hour). At the instant the last
	// reading is stored, detection stands at least an hour behind it: an
	// hour is evaluated once its readings are all in.
	lagEvent := -1.0
	if caughtUp >= 0 {
		lagEvent = caughtUp.Seconds() / (ingested.Seconds() / newest.Sub(s.Start()).Hours())
	}
	readBack := metric(p.http, "rigwatch_detect_rows_read_total")
	marked := metric(p.http, "rigwatch_ingest_readings_marked_late_total")

	st, err := store.Open(ctx, store.Config{Addr: ch, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var bytes, rows uint64
	if err := st.Conn().QueryRow(ctx, "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE active AND database = ? AND table = 'readings'", db).Scan(&bytes, &rows); err != nil {
		t.Fatal(err)
	}

	// The investigator pages over the day, each asked five times.
	get := func(path string) time.Duration {
		var took []time.Duration
		for range 5 {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.http+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body json.RawMessage
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s %s", path, resp.Status, body)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		return took[len(took)/2]
	}
	var feeder, site, operator string
	for _, m := range s.Meters() {
		if m.Role == schemas.RoleSite && site == "" {
			site = m.SiteID
		}
		if m.Role == schemas.RoleFeederHead && feeder == "" {
			feeder = m.FeederID
		}
	}
	for _, l := range s.Licenses() {
		operator = l.OperatorID
		break
	}
	window := "?since=" + url.QueryEscape(s.Start().Format(time.RFC3339)) + "&until=" + url.QueryEscape(s.End().Format(time.RFC3339))
	pages := map[string]time.Duration{
		"ranking":  get("/api/v1/feeders" + window),
		"feeder":   get("/api/v1/feeders/" + feeder + window),
		"site":     get("/api/v1/sites/" + site + window),
		"operator": get("/api/v1/operators/" + operator + window),
	}
	close(stopWatch)
	rss := <-peak
	sigterm(p)
	<-p.done

	res := map[string]any{
		"meters": meters, "rigs": len(s.Rigs()), "readings": readings,
		"produce_seconds": produced.Seconds(), "produce_readings_per_s": readings / produced.Seconds(),
		"ingest_seconds": ingested.Seconds(), "ingest_readings_per_s": readings / ingested.Seconds(),
		"detection_behind_when_stored_hours": lagAtEnd.Hours(), "detection_catch_up_seconds": caughtUp.Seconds(),
		"detection_lag_at_end_event_hours": lagEvent,
		"serve_peak_rss_mb":                float64(rss) / 1024, "serve_gomemlimit": limit, "clickhouse_bytes_per_million_readings": float64(bytes) / float64(rows) * 1e6,
		"rows_read_back_per_reading": readBack / readings, "readings_marked_late": marked,
		"page_seconds": map[string]float64{"ranking": pages["ranking"].Seconds(), "feeder": pages["feeder"].Seconds(),
			"site": pages["site"].Seconds(), "operator": pages["operator"].Seconds()},
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	t.Logf("national run:\n%s", b)
	if out := os.Getenv("RIGWATCH_NATIONAL_OUT"); out != "" {
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var misses []string
	if lagEvent < 0 || lagEvent > 1 {
		misses = append(misses, fmt.Sprintf("detection lag at the end %.2f event hours > 1 (%s behind when the last reading was stored)", lagEvent, lagAtEnd))
	}
	if rss > 2<<20 {
		misses = append(misses, fmt.Sprintf("serve peak RSS %d MB > 2048 MB", rss/1024))
	}
	if pages["ranking"] > time.Second {
		misses = append(misses, fmt.Sprintf("feeder ranking %s > 1s", pages["ranking"]))
	}
	for _, k := range []string{"feeder", "site", "operator"} {
		if pages[k] > 300*time.Millisecond {
			misses = append(misses, fmt.Sprintf("%s page %s > 300ms", k, pages[k]))
		}
	}
	if len(misses) > 0 {
		t.Errorf("targets missed: %s", strings.Join(misses, "; "))
	}
}

// watchPeakRSS returns the peak resident set (kB) of process pid until stop
// closes: the kernel's VmHWM, read once more at the end.
func watchPeakRSS(pid int, stop chan struct{}) int64 {
	read := func() int64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
		return 0
	}
	var peak int64
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		peak = max(peak, read())
		select {
		case <-stop:
			return max(peak, read())
		case <-t.C:
		}
	}
}
