package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// TestReadyzWhileDetectionStops: /readyz answers 503, naming detection,
// once live detection has failed for longer than --detect-stall (here its
// readings table is taken away; nothing else needs it meanwhile), and 200
// again once detection goes on; serve keeps running throughout.
func TestReadyzWhileDetectionStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ch := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	p := startServe(t, brokers, ch, db, "serve", "--detect-every", "200ms", "--detect-stall", "3s")
	w := ingest.NewWriter(brokers, schemas.Readings.Topic(), nil)
	defer w.Close()
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	var msgs []kafka.Message
	for i := 1; i <= 8; i++ {
		v, _ := json.Marshal(schemas.Reading{MeterID: "M-1", TS: start.Add(time.Duration(i) * 15 * time.Minute), KWh: 1, IntervalS: 900})
		msgs = append(msgs, kafka.Message{Key: []byte("M-1"), Value: v})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{Addr: ch, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !waitFor(time.Minute, func() bool { tot, err := st.ReadingTotals(ctx); return err == nil && tot.Rows == 8 }) {
		t.Fatal("the readings were never stored")
	}
	if !waitFor(time.Minute, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Fatalf("never ready: %s", p.body("/readyz"))
	}
	if err := st.Conn().Exec(ctx, "RENAME TABLE "+db+".readings TO "+db+".readings_away"); err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool { return p.status("/readyz") == http.StatusServiceUnavailable }) {
		t.Fatal("/readyz stayed ready while detection failed")
	}
	if body := p.body("/readyz"); !strings.Contains(body, "detection") {
		t.Errorf("/readyz says %q, want it to name detection", body)
	}
	if err := st.Conn().Exec(ctx, "RENAME TABLE "+db+".readings_away TO "+db+".readings"); err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Errorf("/readyz did not recover once detection could go on: %s", p.body("/readyz"))
	}
	if !p.alive() {
		t.Fatal("serve exited")
	}
	sigterm(p)
	if err := <-p.done; err != nil {
		t.Errorf("serve exit after SIGTERM: %v", err)
	}
}

// TestServeExitsWhenAPartFails: a part that fails for good (the broker
// refuses to let serve read a topic) stops every other part: serve exits 1
// and its last line, one line, says which part failed and why.
func TestServeExitsWhenAPartFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ch := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	br := testenv.Broker(t, allTopics()...)
	ready := make(chan struct{})
	br.Cluster().ControlKey(kmsg.Fetch.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		br.Cluster().KeepControl()
		select {
		case <-ready:
		default:
			return nil, nil, false
		}
		r := req.(*kmsg.FetchRequest)
		purchases := false
		for _, tp := range r.Topics {
			purchases = purchases || tp.Topic == schemas.Purchases.Topic()
		}
		if !purchases {
			return nil, nil, false // every other topic reads as usual
		}
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		for _, tp := range r.Topics {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = tp.Topic, tp.TopicID
			for _, p := range tp.Partitions {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	p := startServe(t, br.Addrs(), ch, db, "serve")
	if !waitFor(time.Minute, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Fatalf("never ready: %s", p.body("/readyz"))
	}
	close(ready) // from now on the purchases topic may not be read
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("serve exited with %v, want status 1", err)
		}
	case <-ctx.Done():
		t.Fatal("serve kept running with a part that failed for good")
	}
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "rigwatch: consumer of rigwatch.purchases: ") || !strings.Contains(last, "Topic Authorization Failed") {
		t.Errorf("last line %q: want one line naming the part and the reason", last)
	}
	t.Logf("serve's last words: %s", last)
}
