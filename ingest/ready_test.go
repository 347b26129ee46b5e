package ingest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/localkafka"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
)

// TestConsumerNotReadyWhileBrokerDown: a consumer whose fetches fail for
// longer than its grace says so in Ready, and is ready again once the
// broker is back; Run goes on throughout.
func TestConsumerNotReadyWhileBrokerDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st := testenv.Store(t)
	dir, port, topic := t.TempDir(), freePort(t), "t.purchases"
	br, err := localkafka.Start(dir, port, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { br.Close() }()
	c, err := ingest.NewConsumer(ingest.ConsumerConfig{Brokers: br.Addrs(), Stream: schemas.Purchases, Topic: topic,
		GroupID: "g", FlushInterval: 200 * time.Millisecond, FetchGrace: 2 * time.Second}, st, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	if !waitUntil(30*time.Second, func() bool { return c.Ready() == nil }) {
		t.Fatalf("never ready: %v", c.Ready())
	}
	br.Close()
	if !waitUntil(60*time.Second, func() bool { return c.Ready() != nil }) {
		t.Fatal("Ready never reported the broker down")
	}
	t.Logf("while down: %v", c.Ready())
	if br, err = localkafka.Start(dir, port, topic); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(90*time.Second, func() bool { return c.Ready() == nil }) {
		t.Fatalf("Ready after the broker came back: %v", c.Ready())
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestConsumerRefusedForGood: a broker that refuses the consumer for good
// (not authorised to read the topic) ends Run with the reason, in one line.
func TestConsumerRefusedForGood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := testenv.Store(t)
	topic := "t.purchases"
	br := testenv.Broker(t, topic)
	br.Cluster().ControlKey(kmsg.Fetch.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		br.Cluster().KeepControl()
		r := req.(*kmsg.FetchRequest)
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
	c, err := ingest.NewConsumer(ingest.ConsumerConfig{Brokers: br.Addrs(), Stream: schemas.Purchases, Topic: topic,
		GroupID: "g", FlushInterval: 200 * time.Millisecond}, st, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Run(ctx)
	if !errors.Is(err, kafka.TopicAuthorizationFailed) {
		t.Fatalf("Run = %v, want a topic authorisation failure", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run returned only when the test timed out")
	}
	t.Logf("Run: %v", err)
}
