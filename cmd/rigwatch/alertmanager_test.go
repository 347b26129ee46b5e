package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/localam"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
)

// TestServeFeedsAlertmanager runs serve with --alertmanager against Debian's
// Alertmanager: an alert the detector raises on data produced into Kafka
// appears in Alertmanager's API with its labels and a link to its page, a
// silence made there holds, and resolving the alert through rigwatch's API
// clears it there at once (serve re-sends only every minute, and a firing
// alert's endsAt lies four re-sends ahead).
func TestServeFeedsAlertmanager(t *testing.T) {
	am := localam.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ch := testenv.ClickHouseAddr(t)
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	const token = "rwt_alertmanager-test-token"
	t.Setenv("RIGWATCH_API_TOKEN", token)
	p := startServe(t, brokers, ch, testenv.DatabaseName(), "serve", "--detect-every", "500ms",
		"--alertmanager", am.URL, "--alertmanager-resend", "1m", "--external-url", "https://rigwatch.grid.kz/")
	os.Unsetenv("RIGWATCH_API_TOKEN")
	if !waitFor(time.Minute, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Fatal("serve never became ready")
	}

	// An operator buys 2.5 MWh in one transaction; a meter reports for
	// three hours so that event time moves past it.
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	produce := func(s schemas.Stream, msgs ...kafka.Message) {
		t.Helper()
		w := ingest.NewWriter(brokers, s.Topic(), nil)
		defer w.Close()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := json.Marshal(schemas.Purchase{TxID: "TX-AM-1", OperatorID: "OP-EAST", MWh: 2.5, TS: start.Add(30 * time.Minute)})
	produce(schemas.Purchases, kafkaMsg("TX-AM-1", b))
	var rs []kafka.Message
	for i := 1; i <= 12; i++ {
		b, _ := json.Marshal(schemas.Reading{MeterID: "M-AM", TS: start.Add(time.Duration(i) * 15 * time.Minute), KWh: 1, IntervalS: 900})
		rs = append(rs, kafkaMsg("M-AM", b))
	}
	produce(schemas.Readings, rs...)

	var a localam.Alert
	if !waitFor(90*time.Second, func() bool {
		for _, x := range am.Alerts(t) {
			if x.Labels["alertname"] == schemas.KindOversizedPurchase {
				a = x
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the oversized purchase never reached Alertmanager; it holds %v", am.Alerts(t))
	}
	id := a.Labels["alert_id"]
	if a.Labels["operator_id"] != "OP-EAST" || a.Labels["severity"] == "" || id == "" ||
		a.Generator != "https://rigwatch.grid.kz/#/alert/"+id || !strings.Contains(a.Annotations["summary"], "TX-AM-1") || a.Status.State != "active" {
		t.Errorf("alert in Alertmanager: %+v", a)
	}

	sid := am.Silence(t, "alert_id", id)
	if !waitFor(20*time.Second, func() bool {
		x := am.Alerts(t)[id]
		return x.Status.State == "suppressed" && len(x.Status.SilencedBy) == 1 && x.Status.SilencedBy[0] == sid
	}) {
		t.Errorf("the silence does not hold: %+v", am.Alerts(t)[id])
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.http+"/api/v1/alerts/"+id+"/resolve", strings.NewReader(`{"note":"tender checked: split into three lots"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resolve: %s", resp.Status)
	}
	resolved := time.Now()
	if !waitFor(30*time.Second, func() bool { _, ok := am.Alerts(t)[id]; return !ok }) {
		t.Fatalf("resolved in rigwatch, still in Alertmanager: %+v", am.Alerts(t)[id])
	}
	t.Logf("cleared in Alertmanager %.1fs after the resolve", time.Since(resolved).Seconds())
}
