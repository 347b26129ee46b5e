package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/browsertest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
)

// TestBoardShowsIngestedAlert is the control-room promise end to end: with
// the alerts board open in a browser, data produced into Kafka is ingested
// by a running serve, the detector raises an alert on it, and the alert
// appears on the board without a reload.
func TestBoardShowsIngestedAlert(t *testing.T) {
	browsertest.Path(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ch := testenv.ClickHouseAddr(t)
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	const token = "rwt_board-test-token"
	t.Setenv("RIGWATCH_API_TOKEN", token)
	p := startServe(t, brokers, ch, testenv.DatabaseName(), "serve", "--detect-every", "500ms")
	os.Unsetenv("RIGWATCH_API_TOKEN")
	if !waitFor(time.Minute, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Fatal("serve never became ready")
	}

	bctx := browsertest.Start(t)
	tab, closeTab := chromedp.NewContext(bctx)
	defer closeTab()
	// Open the tab on its own context first: chromedp closes a tab whose
	// first run's context ends, and every later step runs under a timeout.
	if err := chromedp.Do(tab); err != nil {
		t.Fatal(err)
	}
	do := func(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(tab, timeout)
		defer cancel()
		if err := chromedp.Do(c, actions...); err != nil {
			t.Fatalf("browser: %v", err)
		}
	}
	eval := func(expr string) bool {
		c, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		v, err := chromedp.Run(c, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Logf("evaluate %q: %v", expr, err)
		}
		return err == nil && v
	}
	do(30*time.Second,
		chromedp.Navigate("http://"+p.http+"/#token="+token),
		chromedp.WaitVisible(chromedp.CSS(`#board[data-loaded="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-stream="live"]`)),
	)
	if !eval(`(window.__boardMarker = true)`) {
		t.Fatal("cannot mark the page")
	}

	// An operator buys 2.5 MWh in one transaction (the rules allow 1), and a
	// meter reports for three hours so that event time moves past it.
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	produced := time.Now()
	put := func(s schemas.Stream, key string, v any) {
		t.Helper()
		w := ingest.NewWriter(brokers, s.Topic(), nil)
		defer w.Close()
		var msgs []kafka.Message
		switch vs := v.(type) {
		case []schemas.Reading:
			for _, r := range vs {
				b, _ := json.Marshal(r)
				msgs = append(msgs, kafka.Message{Key: []byte(r.MeterID), Value: b})
			}
		default:
			b, _ := json.Marshal(v)
			msgs = append(msgs, kafka.Message{Key: []byte(key), Value: b})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	put(schemas.Purchases, "TX-BIG-1", schemas.Purchase{TxID: "TX-BIG-1", OperatorID: "OP-EAST", MWh: 2.5, TS: start.Add(30 * time.Minute)})
	var rs []schemas.Reading
	for i := 1; i <= 12; i++ {
		rs = append(rs, schemas.Reading{MeterID: "M-BOARD", TS: start.Add(time.Duration(i) * 15 * time.Minute), KWh: 1, IntervalS: 900})
	}
	put(schemas.Readings, "", rs)

	row := `[...document.querySelectorAll('#alert-rows tr')].some(tr => tr.textContent.includes('TX-BIG-1'))`
	if !waitFor(90*time.Second, func() bool { return eval(row) }) {
		t.Fatal("the alert raised on the produced purchase never appeared on the open board")
	}
	t.Logf("alert on the board %.1fs after the data was produced", time.Since(produced).Seconds())
	if !eval(`window.__boardMarker === true`) {
		t.Error("the page reloaded: the alert must arrive live")
	}
	if !eval(`[...document.querySelectorAll('#alert-rows tr')].some(tr => tr.textContent.includes('TX-BIG-1') && /oversized/i.test(tr.textContent))`) {
		t.Error("the alert's row does not say it is an oversized purchase")
	}
}
