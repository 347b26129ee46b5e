package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/api"
	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

const scaleToken = "rwt_scale-out-test-token"

// startServes starts n serve processes in one consumer group, all with the
// static admin token, and waits until every one is ready.
func startServes(t *testing.T, n int, brokers []string, ch, db string, extra ...string) []*proc {
	t.Helper()
	t.Setenv("RIGWATCH_API_TOKEN", scaleToken)
	var ps []*proc
	for i := 0; i < n; i++ {
		ps = append(ps, startServe(t, brokers, ch, db, fmt.Sprintf("serve-%d", i), extra...))
	}
	os.Unsetenv("RIGWATCH_API_TOKEN")
	for _, p := range ps {
		if !waitFor(2*time.Minute, func() bool { return p.status("/readyz") == http.StatusOK }) {
			t.Fatalf("%s never became ready", p.log)
		}
	}
	return ps
}

// get returns the body of an API GET on p, with the admin token.
func (p *proc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+p.http+path, nil)
	req.Header.Set("Authorization", "Bearer "+scaleToken)
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// localAPI answers API requests in the test process, from st and the
// registry ix: the expected answers.
func localAPI(t *testing.T, st *store.Store, ix *registry.Index) func(path string) (int, string) {
	t.Helper()
	h, err := api.NewHandler(api.Deps{Store: st, Registry: ix, AdminToken: scaleToken, Version: rigwatchVersion()})
	if err != nil {
		t.Fatal(err)
	}
	return func(path string) (int, string) {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+scaleToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
}

// TestEveryProcessHoldsTheRegistry: three serve processes in one consumer
// group, each consuming a third of the registry topics' partitions, hold
// the whole registry: every process's site, operator and registry-search
// answers equal the answers from the files themselves, at start and within
// 5 s of live updates (new rigs, status changes, tombstones, a revoked
// licence, a new meter) being stored, and equal a registry reloaded from
// ClickHouse.
func TestEveryProcessHoldsTheRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ch := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	ls, rs, ms := registry.GenerateNational(11, 6000, 12)
	dir := t.TempDir()
	testenv.WriteRegistryCSV(t, dir, ls, rs, ms)
	files, err := ingest.FindFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.ProduceFiles(ctx, files, brokers, nil, 1<<20); err != nil {
		t.Fatal(err)
	}
	for _, s := range []schemas.Stream{schemas.Licenses, schemas.Meters, schemas.Rigs} {
		ends, err := ingest.EndOffsets(ctx, brokers, nil, s.Topic())
		if err != nil {
			t.Fatal(err)
		}
		for p, e := range ends {
			if s == schemas.Rigs && e == 0 {
				t.Fatalf("no rig on partition %d: the test needs records on every partition", p)
			}
		}
	}
	ps := startServes(t, 3, brokers, ch, db)
	st, err := store.Open(ctx, store.Config{Addr: ch, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// What the files say.
	want, err := registry.New(registry.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := want.ApplyLicenses(ls); err != nil {
		t.Fatal(err)
	}
	if err := want.ApplyMeters(ms); err != nil {
		t.Fatal(err)
	}
	if err := want.ApplyRigs(rs); err != nil {
		t.Fatal(err)
	}
	expected := localAPI(t, st, want)

	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	sites := map[string]int{}
	for _, r := range rs {
		sites[r.SiteID]++
	}
	siteIDs := make([]string, 0, len(sites))
	for s := range sites {
		siteIDs = append(siteIDs, s)
	}
	sort.Slice(siteIDs, func(i, j int) bool { return sites[siteIDs[i]] > sites[siteIDs[j]] }) // biggest first
	big := siteIDs[0]
	var paths []string
	page := "?since=2026-05-01T00:00:00Z&until=" + url.QueryEscape(at)
	for _, s := range siteIDs[:5] {
		paths = append(paths, "/api/v1/sites/"+s+page, "/api/v1/registry/search?q="+s+"&at="+url.QueryEscape(at))
	}
	ops := map[string]bool{}
	for _, l := range ls {
		ops[l.OperatorID] = true
	}
	opIDs := make([]string, 0, len(ops))
	for o := range ops {
		opIDs = append(opIDs, o)
	}
	sort.Strings(opIDs)
	for _, o := range append(opIDs[:5], revokedOp(ls)) {
		paths = append(paths, "/api/v1/operators/"+o+page, "/api/v1/registry/search?q="+o+"&at="+url.QueryEscape(at))
	}
	for i := 0; i < len(rs); i += 997 {
		paths = append(paths, "/api/v1/registry/search?q="+rs[i].RigID+"&at="+url.QueryEscape(at),
			"/api/v1/registry/search?q="+url.QueryEscape(rs[i].Serial)+"&at="+url.QueryEscape(at))
	}
	// compare returns the first difference between the processes' answers
	// and the expected ones, or "".
	compare := func(expect func(string) (int, string)) string {
		for _, path := range paths {
			wc, wb := expect(path)
			if wc != 200 {
				return fmt.Sprintf("expected answer to %s: %d %s", path, wc, wb)
			}
			for i, p := range ps {
				if c, b := p.get(t, path); c != wc || b != wb {
					at := 0 // where the answers part
					for at < min(len(b), len(wb)) && b[at] == wb[at] {
						at++
					}
					from := max(0, at-300)
					return fmt.Sprintf("serve-%d answers %s with %d, from byte %d:\n%.600s\nwant %d:\n%.600s", i, path, c, from, b[from:], wc, wb[from:])
				}
			}
		}
		return ""
	}
	var diff string
	if !waitFor(90*time.Second, func() bool { diff = compare(expected); return diff == "" }) {
		t.Fatalf("after the initial load: %s", diff)
	}

	// Live updates, on every partition: 60 new rigs at the biggest site,
	// 40 rigs switched off, 12 removed (tombstones), a licence revoked, a
	// new site meter.
	upd := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	var rigMsgs []kafka.Message
	var newRigs []schemas.Rig
	for i := 0; i < 60; i++ {
		r := rs[i%len(rs)]
		r.RigID, r.Serial, r.SiteID, r.UpdatedAt = fmt.Sprintf("RIG-NEW-%03d", i), fmt.Sprintf("SN-NEW-%03d", i), big, upd
		newRigs = append(newRigs, r)
	}
	for i := 0; i < 40; i++ {
		r := rs[100+i*37]
		r.Status, r.UpdatedAt = schemas.RigSuspended, upd.Add(time.Hour)
		newRigs = append(newRigs, r)
	}
	for _, r := range newRigs {
		v, _ := json.Marshal(r)
		rigMsgs = append(rigMsgs, kafka.Message{Key: []byte(r.RigID), Value: v})
	}
	gone := upd.Add(2 * time.Hour)
	for i := 0; i < 12; i++ {
		id := rs[50+i*311].RigID
		rigMsgs = append(rigMsgs, kafka.Message{Key: []byte(id), Time: gone})
		newRigs = append(newRigs, schemas.Rig{RigID: id, UpdatedAt: gone, Meta: schemas.Meta{Deleted: true}})
	}
	revoked := ls[0]
	revoked.Status, revoked.UpdatedAt = schemas.LicenseRevoked, upd.Add(3*time.Hour)
	meter := schemas.Meter{MeterID: "M-NEW-SITE", FeederID: ms[0].FeederID, Role: schemas.RoleSite, Class: ms[0].Class, SiteID: big, Oblast: ms[0].Oblast, UpdatedAt: upd}
	produceJSON := func(s schemas.Stream, msgs ...kafka.Message) {
		t.Helper()
		w := ingest.NewWriter(brokers, s.Topic(), nil)
		defer w.Close()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	lv, _ := json.Marshal(revoked)
	mv, _ := json.Marshal(meter)
	produceJSON(schemas.Rigs, rigMsgs...)
	produceJSON(schemas.Licenses, kafka.Message{Key: []byte(revoked.LicenseID), Value: lv})
	produceJSON(schemas.Meters, kafka.Message{Key: []byte(meter.MeterID), Value: mv})
	if err := want.ApplyRigs(newRigs); err != nil {
		t.Fatal(err)
	}
	if err := want.ApplyLicense(revoked); err != nil {
		t.Fatal(err)
	}
	if err := want.ApplyMeter(meter); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, "/api/v1/sites/"+big+page, "/api/v1/registry/search?q=RIG-NEW-007&at="+url.QueryEscape(at),
		"/api/v1/registry/search?q=M-NEW-SITE&at="+url.QueryEscape(at), "/api/v1/registry/search?q="+newRigs[100].RigID+"&at="+url.QueryEscape(at))
	// Stored: every update is in ClickHouse.
	stored := func() bool {
		var n uint64
		q := "SELECT (SELECT count() FROM " + db + ".rigs FINAL WHERE updated_at >= toDateTime('2026-01-01 00:00:00')) + " +
			"(SELECT count() FROM " + db + ".licenses FINAL WHERE updated_at >= toDateTime('2026-01-01 00:00:00')) + " +
			"(SELECT count() FROM " + db + ".meters FINAL WHERE updated_at >= toDateTime('2026-01-01 00:00:00'))"
		return st.Conn().QueryRow(ctx, q).Scan(&n) == nil && n == uint64(len(newRigs)+2)
	}
	if !waitFor(2*time.Minute, stored) {
		t.Fatal("the updates were never stored")
	}
	storedAt := time.Now()
	if !waitFor(5*time.Second, func() bool { diff = compare(expected); return diff == "" }) {
		t.Fatalf("5 s after the updates were stored: %s", diff)
	}
	t.Logf("every process answered as the files say %.2fs after the updates were stored", time.Since(storedAt).Seconds())

	// The same registry as a reload from ClickHouse gives, once every
	// record is stored (the followers read the topics, and may be ahead of
	// the consumers storing them; "stored" above counts the updates only).
	if !waitFor(30*time.Second, func() bool {
		reloaded, err := registry.New(registry.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.LoadRegistry(ctx, reloaded); err != nil {
			t.Fatal(err)
		}
		diff = compare(localAPI(t, st, reloaded))
		return diff == ""
	}) {
		t.Fatalf("against a registry reloaded from ClickHouse: %s", diff)
	}
}

// revokedOp is the operator whose licence the test revokes.
func revokedOp(ls []schemas.License) string { return ls[0].OperatorID }

// sseAlerts reads the alert stream of p into alerts until ctx ends.
func sseAlerts(ctx context.Context, t *testing.T, p *proc, alerts chan<- schemas.Alert) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+p.http+"/api/v1/alerts/stream?access_token="+scaleToken, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("stream of %s: %v", p.log, err)
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		var a schemas.Alert
		if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &a) == nil {
			select {
			case alerts <- a:
			case <-ctx.Done():
				return
			}
		}
	}
}

// TestEveryBoardShowsEveryAlert: two serve processes in one group; the
// elected one detects an oversized purchase. Both processes' boards (the
// list and the SSE stream) show the new alert, and an acknowledgement made
// on either shows on both.
func TestEveryBoardShowsEveryAlert(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ch := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	ps := startServes(t, 2, brokers, ch, db, "--detect-every", "300ms")
	streams := make([]chan schemas.Alert, len(ps))
	for i, p := range ps {
		streams[i] = make(chan schemas.Alert, 100)
		go sseAlerts(ctx, t, p, streams[i])
	}
	time.Sleep(time.Second) // the streams are open
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	put := func(s schemas.Stream, msgs ...kafka.Message) {
		w := ingest.NewWriter(brokers, s.Topic(), nil)
		defer w.Close()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	pv, _ := json.Marshal(schemas.Purchase{TxID: "TX-BIG-2", OperatorID: "OP-EAST", MWh: 2.5, TS: start.Add(30 * time.Minute)})
	put(schemas.Purchases, kafka.Message{Key: []byte("TX-BIG-2"), Value: pv})
	var rmsgs []kafka.Message
	for i := 1; i <= 12; i++ {
		v, _ := json.Marshal(schemas.Reading{MeterID: "M-BOARD", TS: start.Add(time.Duration(i) * 15 * time.Minute), KWh: 1, IntervalS: 900})
		rmsgs = append(rmsgs, kafka.Message{Key: []byte("M-BOARD"), Value: v})
	}
	put(schemas.Readings, rmsgs...)
	id := ""
	for i, s := range streams {
		deadline := time.After(2 * time.Minute)
	seen:
		for {
			select {
			case a := <-s:
				if a.TxID == "TX-BIG-2" {
					id = a.AlertID
					break seen
				}
			case <-deadline:
				t.Fatalf("serve-%d's stream never showed the alert on TX-BIG-2", i)
			}
		}
	}
	for i, p := range ps {
		if _, body := p.get(t, "/api/v1/alerts"); !strings.Contains(body, id) {
			t.Errorf("serve-%d's alert list lacks %s", i, id)
		}
	}
	// Acknowledge on the process that does not run detection.
	other := ps[0]
	if logHas(ps[0], "this process runs detection") {
		other = ps[1]
	}
	req, _ := http.NewRequest("POST", "http://"+other.http+"/api/v1/alerts/"+id+"/acknowledge", strings.NewReader(`{"note":"crew sent"}`))
	req.Header.Set("Authorization", "Bearer "+scaleToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("acknowledge: %v %v", resp, err)
	}
	resp.Body.Close()
	for i, s := range streams {
		deadline := time.After(30 * time.Second)
	wait:
		for {
			select {
			case a := <-s:
				if a.AlertID == id && a.Status == schemas.StatusAcknowledged {
					break wait
				}
			case <-deadline:
				t.Fatalf("serve-%d's stream never showed the acknowledgement", i)
			}
		}
	}
}

// TestAcknowledgementsStandAcrossProcesses: the test process plays the
// elected detector and writes 1,000 span updates (50 evaluations of 20
// findings) while people acknowledge or resolve every finding through a
// serve process's API: every change stands, on every process and in the
// alerts table as users query it.
func TestAcknowledgementsStandAcrossProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ch := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	ps := startServes(t, 2, brokers, ch, db)
	st, err := store.Open(ctx, store.Config{Addr: ch, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	const n, rounds = 20, 50
	findings := func(u int) []schemas.Alert {
		var as []schemas.Alert
		for i := 0; i < n; i++ {
			kwh := float64(u)
			as = append(as, schemas.Alert{AlertID: fmt.Sprintf("span-%02d", i), Kind: schemas.KindOverCapacity, Severity: schemas.SeverityWarning,
				EntityType: schemas.EntityMeter, EntityID: "M1", MeterID: "M1", WindowStart: t0, WindowEnd: t0.Add(time.Duration(u) * time.Hour),
				ExcessKWh: &kwh, Score: kwh, Summary: "over capacity", Evidence: map[string]any{}})
		}
		return as
	}
	if _, err := st.UpsertAlerts(ctx, findings(0)); err != nil {
		t.Fatal(err)
	}
	progress := make(chan int, rounds)
	go func() {
		defer close(progress)
		for u := 1; u <= rounds; u++ {
			if _, err := st.UpsertAlerts(ctx, findings(u)); err != nil {
				t.Error(err)
				return
			}
			progress <- u
		}
	}()
	want := map[string]string{}
	var wg sync.WaitGroup
	next := 0
	for u := range progress {
		for next < n && u >= (next+1)*rounds/(n+1) {
			id, to, verb := fmt.Sprintf("span-%02d", next), schemas.StatusAcknowledged, "acknowledge"
			if next%4 == 0 {
				to, verb = schemas.StatusResolved, "resolve"
			}
			want[id] = to
			p := ps[next%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", "http://"+p.http+"/api/v1/alerts/"+id+"/"+verb, strings.NewReader(`{"note":"by a person"}`))
				req.Header.Set("Authorization", "Bearer "+scaleToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("%s %s: %d", verb, id, resp.StatusCode)
				}
			}()
			next++
		}
	}
	wg.Wait()
	if next != n {
		t.Fatalf("%d of %d changes made", next, n)
	}
	for i, p := range ps {
		_, body := p.get(t, "/api/v1/alerts?limit=100")
		var list api.AlertList
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatal(err)
		}
		lost := 0
		for _, a := range list.Alerts {
			if a.Status != want[a.AlertID] || a.Note != "by a person" || *a.ExcessKWh != rounds {
				if lost++; lost <= 5 {
					t.Errorf("serve-%d: %s is %s %q at update %v, want %s at %d", i, a.AlertID, a.Status, a.Note, *a.ExcessKWh, want[a.AlertID], rounds)
				}
			}
		}
		if len(list.Alerts) != n || lost > 0 {
			t.Errorf("serve-%d: %d alerts, %d people's changes lost", i, len(list.Alerts), lost)
		}
	}
	// The alerts table itself, as users query it, within a few fold rounds.
	table := func() string {
		rows, err := st.Conn().Query(ctx, "SELECT alert_id, status FROM "+db+".alerts FINAL")
		if err != nil {
			return err.Error()
		}
		defer rows.Close()
		for rows.Next() {
			var id, status string
			if err := rows.Scan(&id, &status); err != nil {
				return err.Error()
			}
			if status != want[id] {
				return id + " is " + status + " in the table"
			}
		}
		return ""
	}
	var diff string
	if !waitFor(30*time.Second, func() bool { diff = table(); return diff == "" }) {
		t.Errorf("SELECT status FROM alerts FINAL: %s", diff)
	}
}
