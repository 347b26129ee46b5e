package notify

import (
	"context"
	"encoding/json"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/schemas"
)

// Board follows the alerts topic from its end, outside any consumer group,
// and publishes every alert on it to a Broadcaster: whichever process the
// detector or a person changed an alert on, every process's live board
// (the API's SSE stream) and Alertmanager client see the change. Its
// Ready is safe for concurrent use.
type Board struct {
	tail *ingest.Tail
	b    *Broadcaster
	log  *zap.Logger
}

// NewBoard returns a board reading topic (schemas.AlertsTopic in serve)
// from brokers into b; Run follows.
func NewBoard(brokers []string, dialer *kafka.Dialer, topic string, b *Broadcaster, log *zap.Logger) (*Board, error) {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("component", "board"))
	t, err := ingest.NewTail(ingest.TailConfig{Brokers: brokers, Dialer: dialer, Topics: []string{topic}, StartAt: kafka.LastOffset}, log)
	if err != nil {
		return nil, err
	}
	return &Board{tail: t, b: b, log: log}, nil
}

// Run publishes the alerts that reach the topic from now on until ctx ends;
// see ingest.Tail.Run. A message that is not an alert is skipped.
func (bd *Board) Run(ctx context.Context) error {
	var as []schemas.Alert
	return bd.tail.Run(ctx, func(msgs []kafka.Message) error {
		as = as[:0]
		for _, m := range msgs {
			var a schemas.Alert
			if err := json.Unmarshal(m.Value, &a); err != nil || a.AlertID == "" {
				bd.log.Warn("skipped a message that is not an alert", zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset))
				continue
			}
			as = append(as, a)
		}
		bd.b.Publish(as)
		return nil
	})
}

// Ready returns why the board cannot follow the topic, or nil.
func (bd *Board) Ready() error { return bd.tail.Ready() }
