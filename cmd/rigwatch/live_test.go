package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
	"github.com/rigwatch/rigwatch/store"
)

// TestLiveMatchesReplay streams a simulated scenario through the broker to
// a running serve at accelerated time: the alerts it raises live are the
// alerts a replay of the same scenario raises.
func TestLiveMatchesReplay(t *testing.T) { liveVersusReplay(t, 0, false) }

// TestKilledServeKeepsAlerts does the same while serve is killed with
// SIGKILL five times at random moments: the alert set is still the replay's,
// none lost and none doubled.
func TestKilledServeKeepsAlerts(t *testing.T) { liveVersusReplay(t, 5, false) }

// TestLeaderFailover runs two serve processes in one group and kills the
// one leading detection twice mid-run: the other takes over from the
// stored state each time, and the alert set is still the replay's (same
// ids).
func TestLeaderFailover(t *testing.T) { liveVersusReplay(t, 2, true) }

type alertKey struct {
	id, kind, entity string
	detected, start  int64
}

func keysOf(as []schemas.Alert, upTo time.Time) []alertKey {
	var out []alertKey
	for _, a := range as {
		if a.DetectedAt.After(upTo) {
			continue
		}
		out = append(out, alertKey{a.AlertID, a.Kind, a.EntityID, a.DetectedAt.Unix(), a.WindowStart.Unix()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func liveVersusReplay(t *testing.T, kills int, pair bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	cfg := sim.Config{Seed: 11, Feeders: 10, Days: 5}
	if soak() {
		cfg = sim.Config{Seed: 11} // 40 feeders, 14 days, 2.3M readings
		if kills > 0 {
			kills = 8
		}
	}
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := sim.WriteDir(ctx, s, dir, sim.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	ch := testenv.ClickHouseAddr(t)

	refFile := filepath.Join(t.TempDir(), "alerts.jsonl")
	refDB := testenv.DatabaseName()
	if out, err := run(t, "replay", dir, "--clickhouse", ch, "--clickhouse-database", refDB,
		"--alerts-out", refFile, "--log-level", "error"); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	ref, err := sim.LoadAlerts(refFile)
	if err != nil {
		t.Fatal(err)
	}
	if kills == 0 {
		// Replaying the same scenario again raises nothing new: the same
		// alert set, the same ids, and no second row in the table.
		again := filepath.Join(t.TempDir(), "again.jsonl")
		if out, err := run(t, "replay", dir, "--clickhouse", ch, "--clickhouse-database", refDB,
			"--alerts-out", again, "--log-level", "error"); err != nil {
			t.Fatalf("second replay: %v\n%s", err, out)
		}
		ref2, err := sim.LoadAlerts(again)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(keysOf(ref2, s.End())) != fmt.Sprint(keysOf(ref, s.End())) {
			t.Errorf("a second replay raised a different alert set: %d vs %d alerts", len(ref2), len(ref))
		}
		st, err := store.Open(ctx, store.Config{Addr: ch, Database: refDB}, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := st.CountAlerts(ctx)
		st.Close()
		if err != nil || n != uint64(len(ref)) {
			t.Errorf("after two replays the alerts table holds %d alerts (%v), want %d", n, err, len(ref))
		}
	}

	brokers := testenv.Broker(t, allTopics()...).Addrs()
	db := testenv.DatabaseName()
	// Streamed over about a minute (ten under soak), so that the kills land
	// mid-stream.
	streamFor := 60.0
	if soak() {
		streamFor = 600
	}
	speed := float64(s.Steps()) * s.Interval().Seconds() / streamFor
	str := &streamer{rt: &runtime{brokers: brokers, log: zap.NewNop()}, s: s, speed: speed, log: zap.NewNop()}
	streamed := make(chan error, 1)
	go func() { streamed <- str.run(ctx) }()
	// An Alertmanager-style receiver, told of new critical alerts.
	var hookMu sync.Mutex
	hooked := map[string]bool{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Alerts []struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		hookMu.Lock()
		for _, a := range msg.Alerts {
			hooked[a.Annotations["alert_id"]] = true
		}
		hookMu.Unlock()
	}))
	defer hook.Close()
	serveArgs := []string{"--detect-every", "500ms", "--alert-webhook", hook.URL}
	procs := []*proc{startServe(t, brokers, ch, db, "serve-0", serveArgs...)}
	if pair {
		procs = append(procs, startServe(t, brokers, ch, db, "serve-1", serveArgs...))
	}
	// leader returns the process running detection: the one whose event
	// time moved.
	leader := func() int {
		for i, q := range procs {
			if metric(q.http, "rigwatch_detect_event_time_seconds") > 0 {
				return i
			}
		}
		return -1
	}
	rng := rand.New(rand.NewSource(int64(kills)))
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(streamFor/float64(kills+1)*(0.5+rng.Float64())) * time.Second)
		if !waitFor(time.Minute, func() bool { return settled(ctx, brokers, len(procs)) }) {
			t.Fatalf("serve %d's consumer groups never settled", i)
		}
		k := 0
		if pair {
			if !waitFor(time.Minute, func() bool { return leader() >= 0 }) {
				t.Fatal("no process runs detection")
			}
			k = leader()
		}
		_ = procs[k].cmd.Process.Signal(syscall.SIGKILL)
		<-procs[k].done
		t.Logf("killed serve %d (of %d), the one detecting", i, len(procs))
		procs[k] = startServe(t, brokers, ch, db, fmt.Sprintf("serve-%d", i+len(procs)), serveArgs...)
	}
	if err := <-streamed; err != nil {
		t.Fatalf("stream: %v", err)
	}
	for _, st := range schemas.Streams {
		if !waitFor(3*time.Minute, func() bool {
			lag, err := ingest.GroupLag(ctx, brokers, nil, "rigwatch."+string(st), st.Topic())
			return err == nil && lag == 0
		}) {
			ends, _ := ingest.EndOffsets(ctx, brokers, nil, st.Topic())
			parts := []int{}
			for p := range ends {
				parts = append(parts, p)
			}
			com, err := ingest.CommittedOffsets(ctx, brokers, nil, "rigwatch."+string(st), st.Topic(), parts)
			dg, derr := (&kafka.Client{Addr: kafka.TCP(brokers...)}).DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{"rigwatch." + string(st)}})
			if derr == nil {
				for _, g := range dg.Groups {
					t.Logf("group %s state %s, %d members", g.GroupID, g.GroupState, len(g.Members))
					for _, m := range g.Members {
						t.Logf("  member %s client %s host %s assignments %+v", m.MemberID, m.ClientID, m.ClientHost, m.MemberAssignments.Topics)
					}
				}
			}
			t.Fatalf("serve did not catch up with %s: end offsets %v, committed %v (%v)", st, ends, com, err)
		}
	}
	// Live evaluation stops an allowance short of the last reading.
	upTo := hourBefore(s.End().Add(-15 * time.Minute))
	var p *proc
	if !waitFor(3*time.Minute, func() bool {
		for _, q := range procs {
			if metric(q.http, "rigwatch_detect_event_time_seconds") >= float64(upTo.Unix()) {
				p = q
				return true
			}
		}
		return false
	}) {
		t.Fatalf("live detection never reached %s", upTo)
	}
	if kills == 0 {
		// Live detection reads each new hour once, and an hour again only
		// when ingest marked a reading stored behind it.
		read, stored := metric(p.http, "rigwatch_detect_rows_read_total"), metric(p.http, `rigwatch_ingest_stored_records_total{stream="readings"}`)
		t.Logf("%.0f readings stored, %.0f read back by detection, %.0f marked late", stored, read, metric(p.http, "rigwatch_ingest_readings_marked_late_total"))
		if stored <= 0 || read > 2*stored {
			t.Errorf("detection read back %.0f rows for %.0f readings stored: more than two each", read, stored)
		}
	}
	for _, q := range procs {
		sigterm(q)
		<-q.done
	}

	st, err := store.Open(ctx, store.Config{Addr: ch, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	live, err := st.ListAlerts(ctx, store.AlertFilter{Limit: store.MaxAlertLimit})
	if err != nil {
		t.Fatal(err)
	}
	want, got := keysOf(ref, upTo), keysOf(live, upTo)
	kinds := map[string]bool{}
	for _, k := range want {
		kinds[k.kind] = true
	}
	if len(want) < 5 || len(kinds) < 3 {
		t.Fatalf("the scenario raised too few alerts to compare (%d of %d kinds)", len(want), len(kinds))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("live alerts differ from replay: %d live, %d replay", len(got), len(want))
		diff(t, want, got)
		return
	}
	t.Logf("%d alerts of %d kinds, identical live and in replay", len(want), len(kinds))
	if kills > 0 {
		return // a kill between storing an alert and notifying loses the notice: webhooks are at most once
	}
	var critical []string
	for _, a := range live {
		if a.Severity == schemas.SeverityCritical {
			critical = append(critical, a.AlertID)
		}
	}
	if len(critical) == 0 {
		t.Fatal("no critical alert to deliver: the webhook check proves nothing")
	}
	hookMu.Lock()
	defer hookMu.Unlock()
	for _, id := range critical {
		if !hooked[id] {
			t.Errorf("critical alert %s never reached the webhook", id)
		}
	}
	// A finding is told of when it opens critical or becomes critical;
	// one re-judged below critical later was told of all the same.
	ids := map[string]bool{}
	for _, a := range live {
		ids[a.AlertID] = true
	}
	for id := range hooked {
		if !ids[id] {
			t.Errorf("webhook told of %s, which the live run does not hold", id)
		}
	}
}

func diff(t *testing.T, want, got []alertKey) {
	t.Helper()
	w := map[string]alertKey{}
	for _, k := range want {
		w[k.id] = k
	}
	g := map[string]alertKey{}
	for _, k := range got {
		g[k.id] = k
	}
	n := 0
	for id, k := range w {
		if gk, ok := g[id]; !ok || gk != k {
			if n++; n <= 8 {
				t.Logf("replay %+v, live %+v (present %v)", k, gk, ok)
			}
		}
	}
	for id, k := range g {
		if _, ok := w[id]; !ok {
			if n++; n <= 16 {
				t.Logf("live only: %+v", k)
			}
		}
	}
}

// metric reads one unlabelled metric from a serve's /metrics (NaN-free: -1
// when absent).
func metric(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}
