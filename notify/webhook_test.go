package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/rigwatch/rigwatch/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// receiver is a real HTTP server that records the messages posted to it and
// answers with the status codes in answers, then 200.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	bodies  [][]byte
	answers []int
	hang    chan struct{} // non-nil: hold every request until closed
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	t.Helper()
	r := &receiver{answers: answers}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.hang != nil {
			select {
			case <-r.hang:
			case <-req.Context().Done():
			}
			return
		}
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		code := http.StatusOK
		if len(r.answers) > 0 {
			code, r.answers = r.answers[0], r.answers[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

func fp(v float64) *float64 { return &v }

func sample() []schemas.Alert {
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	return []schemas.Alert{
		{AlertID: "a1", Kind: "feeder_imbalance", Severity: "critical", EntityType: "feeder", EntityID: "F-0042",
			FeederID: "F-0042", MeterID: "M-HEAD-0042", Oblast: "East Kazakhstan",
			WindowStart: t0, WindowEnd: t0.Add(6 * time.Hour), DetectedAt: t0.Add(2 * time.Hour),
			ExcessKWh: fp(1234.56), EstimatedValueKZT: fp(30864), Summary: "Feeder F-0042 lost 1,235 kWh beyond its normal losses."},
		{AlertID: "a2", Kind: "over_capacity", Severity: "warning", EntityType: "meter", EntityID: "M-7",
			MeterID: "M-7", DetectedAt: t0, Summary: "only a warning"},
		{AlertID: "a3", Kind: "over_capacity", Severity: "critical", EntityType: "meter", EntityID: "M-8",
			MeterID: "M-8", SiteID: "S-8", OperatorID: "OP-1", FeederID: "F-9", Oblast: "Pavlodar",
			WindowStart: t0, WindowEnd: t0.Add(time.Hour), DetectedAt: t0.Add(time.Hour),
			ExcessKWh: fp(410), Summary: "Site S-8 draws 410 kWh over its registered capacity."},
		{AlertID: "a4", Kind: "over_capacity", Severity: "critical", EntityType: "meter", EntityID: "M-9",
			MeterID: "M-9", SiteID: "S-9", OperatorID: "OP-1", FeederID: "F-9", Oblast: "Pavlodar",
			WindowStart: t0, WindowEnd: t0.Add(time.Hour), DetectedAt: t0.Add(time.Hour),
			Summary: "Site S-9 draws over its registered capacity."},
	}
}

// TestWebhookPayload checks the messages against a golden file and against
// what an Alertmanager receiver relies on: one message per kind, only
// critical alerts, labels and annotations from the alert, startsAt the
// detection time, and Alertmanager's fingerprint.
func TestWebhookPayload(t *testing.T) {
	rc := newReceiver(t)
	w := &Webhook{URL: rc.URL + "/hook", ExternalURL: "https://rigwatch.example.kz"}
	sent0 := testutil.ToFloat64(sentAlerts)
	if err := w.Send(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	bodies := rc.received()
	if len(bodies) != 2 {
		t.Fatalf("got %d messages, want 2 (one per kind)", len(bodies))
	}
	if d := testutil.ToFloat64(sentAlerts) - sent0; d != 3 {
		t.Errorf("sent counter rose by %v, want 3", d)
	}

	var pretty bytes.Buffer
	for _, b := range bodies {
		if err := json.Indent(&pretty, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		pretty.WriteByte('\n')
	}
	golden := filepath.Join("testdata", "messages.golden.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("messages differ from %s (go test -update to accept):\n%s", golden, pretty.Bytes())
	}

	var m Message
	if err := json.Unmarshal(bodies[1], &m); err != nil {
		t.Fatal(err)
	}
	if m.Version != "4" || m.Status != "firing" || m.Receiver != "rigwatch" || m.GroupLabels["alertname"] != "over_capacity" {
		t.Errorf("message header %+v", m)
	}
	if len(m.Alerts) != 2 {
		t.Fatalf("over_capacity message has %d alerts, want the 2 critical ones", len(m.Alerts))
	}
	wantCommon := map[string]string{"alertname": "over_capacity", "severity": "critical", "entity_type": "meter",
		"operator_id": "OP-1", "feeder_id": "F-9", "oblast": "Pavlodar"}
	if len(m.CommonLabels) != len(wantCommon) {
		t.Errorf("commonLabels %v, want %v", m.CommonLabels, wantCommon)
	}
	for k, v := range wantCommon {
		if m.CommonLabels[k] != v {
			t.Errorf("commonLabels %v, want %v", m.CommonLabels, wantCommon)
		}
	}
	a := m.Alerts[0]
	if a.Labels["meter_id"] != "M-8" || a.Labels["site_id"] != "S-8" || a.Annotations["alert_id"] != "a3" ||
		a.Annotations["excess_kwh"] != "410.0" || a.Annotations["summary"] == "" ||
		!a.StartsAt.Equal(time.Date(2025, 10, 1, 1, 0, 0, 0, time.UTC)) || !a.EndsAt.IsZero() ||
		a.GeneratorURL != "https://rigwatch.example.kz/#/alert/a3" {
		t.Errorf("alert %+v", a)
	}
	if _, ok := m.Alerts[1].Annotations["excess_kwh"]; ok {
		t.Errorf("an alert without excess_kwh got the annotation: %v", m.Alerts[1].Annotations)
	}
	for _, a := range m.Alerts {
		ls := model.LabelSet{}
		for k, v := range a.Labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		if a.Fingerprint != ls.Fingerprint().String() {
			t.Errorf("fingerprint %s, Alertmanager's is %s", a.Fingerprint, ls.Fingerprint())
		}
	}
}

// TestWebhookOnlyCritical: warnings and infos never leave.
func TestWebhookOnlyCritical(t *testing.T) {
	rc := newReceiver(t)
	w := &Webhook{URL: rc.URL}
	var as []schemas.Alert
	for _, a := range sample() {
		if a.Severity != "critical" {
			as = append(as, a)
		}
	}
	as = append(as, schemas.Alert{AlertID: "i1", Kind: "oversized_purchase", Severity: "info"})
	if err := w.Notify(context.Background(), as); err != nil {
		t.Fatal(err)
	}
	if err := w.Send(context.Background(), as); err != nil {
		t.Fatal(err)
	}
	if n := len(w.queue); n != 0 {
		t.Errorf("%d messages queued for non-critical alerts", n)
	}
	if n := len(rc.received()); n != 0 {
		t.Errorf("receiver got %d messages for non-critical alerts", n)
	}
}

// TestWebhookRetries: a 500 or 503 is retried with backoff, a 400 is not,
// and a receiver that keeps failing makes the message count as failed.
func TestWebhookRetries(t *testing.T) {
	f := func(answers []int, wantCalls int, wantErr bool) {
		t.Helper()
		rc := newReceiver(t, answers...)
		w := &Webhook{URL: rc.URL, Attempts: 3, Backoff: 10 * time.Millisecond}
		sent0, failed0 := testutil.ToFloat64(sentAlerts), testutil.ToFloat64(failedAlerts)
		err := w.Send(context.Background(), sample()[:1])
		if (err != nil) != wantErr {
			t.Errorf("answers %v: error %v, want error %v", answers, err, wantErr)
		}
		if n := len(rc.received()); n != wantCalls {
			t.Errorf("answers %v: %d calls, want %d", answers, n, wantCalls)
		}
		sent, failed := testutil.ToFloat64(sentAlerts)-sent0, testutil.ToFloat64(failedAlerts)-failed0
		if wantErr && (sent != 0 || failed != 1) || !wantErr && (sent != 1 || failed != 0) {
			t.Errorf("answers %v: counted %v sent, %v failed", answers, sent, failed)
		}
	}
	f(nil, 1, false)
	f([]int{500, 503}, 3, false)
	f([]int{429}, 2, false)
	f([]int{500, 500, 500}, 3, true)
	f([]int{400}, 1, true)
}

// TestWebhookNeverBlocks: with a receiver that hangs, Notify still returns
// at once, drops what the queue cannot hold and counts it, and Run stops
// within its bound when asked.
func TestWebhookNeverBlocks(t *testing.T) {
	rc := newReceiver(t)
	rc.hang = make(chan struct{})
	t.Cleanup(func() { close(rc.hang) }) // runs before rc.Close
	w := &Webhook{URL: rc.URL, QueueSize: 2, Timeout: 200 * time.Millisecond, Attempts: 2, Backoff: 10 * time.Millisecond}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	dropped0 := testutil.ToFloat64(droppedAlerts)
	one := sample()[:1]
	start := time.Now()
	var full int
	for i := 0; i < 50; i++ {
		if err := w.Notify(ctx, one); err == ErrQueueFull {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("50 Notify calls took %v with a hanging receiver", d)
	}
	// Run holds at most one message, the queue two: the rest are dropped.
	if full < 47 {
		t.Errorf("%d of 50 dropped, want at least 47", full)
	}
	if d := testutil.ToFloat64(droppedAlerts) - dropped0; d != float64(full) {
		t.Errorf("dropped counter rose by %v, want %d", d, full)
	}
	stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop with the receiver hanging")
	}
}

func TestWebhookValidate(t *testing.T) {
	for u, ok := range map[string]bool{"http://am:9093/api/v2/alerts": true, "https://x/y?token=s": true,
		"": false, "am:9093": false, "ftp://x/": false, "http://": false} {
		if err := (&Webhook{URL: u}).Validate(); (err == nil) != ok {
			t.Errorf("Validate(%q) = %v", u, err)
		}
	}
}
