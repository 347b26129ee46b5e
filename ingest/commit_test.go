package ingest_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
)

// TestConsumerRetriesFailedCommit fails the consumer's first offset commits
// and then produces nothing more: the stored records' offsets must still be
// committed, by retry, or the group's lag never reaches zero and live
// detection (which waits for it) stalls.
func TestConsumerRetriesFailedCommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := testenv.Store(t)
	topic := "t.purchases"
	br := testenv.Broker(t, topic)
	var failed atomic.Int32
	br.Cluster().ControlKey(kmsg.OffsetCommit.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if failed.Load() >= 3 {
			return nil, nil, false // from now on the broker commits normally
		}
		br.Cluster().KeepControl()
		failed.Add(1)
		r := req.(*kmsg.OffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, tp := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = tp.Topic
			for _, p := range tp.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.CoordinatorNotAvailable.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})

	w := ingest.NewWriter(br.Addrs(), topic, nil)
	defer w.Close()
	var msgs []kafka.Message
	for i := 0; i < 20; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)),
			Value: []byte(fmt.Sprintf(`{"tx_id":"T%d","operator_id":"O1","mwh":0.5,"ts":"2025-10-01T00:00:00Z"}`, i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	c, err := ingest.NewConsumer(ingest.ConsumerConfig{Brokers: br.Addrs(), Stream: schemas.Purchases, Topic: topic,
		GroupID: "g", FlushInterval: 200 * time.Millisecond}, st, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	defer func() { stop(); <-done }()
	deadline := time.Now().Add(time.Minute)
	for {
		lag, err := ingest.GroupLag(ctx, br.Addrs(), nil, "g", topic)
		if err == nil && lag == 0 && failed.Load() >= 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("offsets never committed after %d refused commits: lag %d (%v)", failed.Load(), lag, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
