package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/schemas"
)

// NewWriter returns a kafka-go writer for topic tuned for synchronous
// batches: the default 1 s BatchTimeout would make every WriteMessages call
// wait a second per partition.
func NewWriter(brokers []string, topic string, dialer *kafka.Dialer) *kafka.Writer {
	tr := &kafka.Transport{}
	if dialer != nil {
		tr.TLS, tr.SASL = dialer.TLS, dialer.SASLMechanism
	}
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		BatchSize:    10_000,
		BatchBytes:   900_000, // under the brokers' default 1 MB message.max.bytes
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
		Transport:    tr,
	}
}

// WriteError condenses kafka-go's per-message WriteErrors (one entry per
// message: megabytes for a large batch) into one line: how many failed and
// the distinct causes.
func WriteError(err error) error {
	var we kafka.WriteErrors
	if !errors.As(err, &we) {
		return err
	}
	causes := map[string]bool{}
	var first error
	for _, e := range we {
		if e != nil && !causes[e.Error()] {
			causes[e.Error()] = true
			if first == nil {
				first = e
			}
		}
	}
	return fmt.Errorf("%d of %d messages not written (%d distinct causes, first: %w)", we.Count(), len(we), len(causes), first)
}

// KafkaRejects publishes rejects to the rejects topic as JSON. Safe for
// concurrent use.
type KafkaRejects struct{ W *kafka.Writer }

// PublishRejects writes rs synchronously. A message carries at most RawCut
// bytes of the raw input (raw_size and raw_sha256 still describe all of it;
// the rejects table keeps what NewReject kept): a reject of an input near the
// size limit, base64-encoded, would otherwise outgrow the writer's batch and
// the broker's message limit, fail on every retry, and stall its consumer.
func (k KafkaRejects) PublishRejects(ctx context.Context, rs []schemas.Reject) error {
	msgs := make([]kafka.Message, len(rs))
	for i := range rs {
		rj := rs[i]
		if len(rj.Raw) > RawCut {
			rj.Raw = rj.Raw[:RawCut]
		}
		v, err := json.Marshal(&rj)
		if err != nil {
			return err
		}
		key := rs[i].Source + ":" + strconv.Itoa(int(rs[i].Partition)) + ":" + strconv.FormatInt(rs[i].Offset, 10) + ":" + strconv.FormatInt(rs[i].Line, 10)
		msgs[i] = kafka.Message{Key: []byte(key), Value: v}
	}
	if err := k.W.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("cannot publish %d rejects: %w", len(rs), WriteError(err))
	}
	return nil
}

// EnsureTopics creates the topics that do not exist yet.
func EnsureTopics(ctx context.Context, brokers []string, dialer *kafka.Dialer, partitions int, topics ...string) error {
	if dialer == nil {
		dialer = &kafka.Dialer{Timeout: 10 * time.Second}
	}
	conn, err := dialer.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return fmt.Errorf("cannot reach Kafka at %s: %w", brokers[0], err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("cannot find the Kafka controller: %w", err)
	}
	cc, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("cannot reach the Kafka controller: %w", err)
	}
	defer cc.Close()
	cfgs := make([]kafka.TopicConfig, len(topics))
	for i, t := range topics {
		cfgs[i] = kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: 1}
	}
	if err := cc.CreateTopics(cfgs...); err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("cannot create topics: %w", err)
	}
	return nil
}

// Offsets maps a partition to an offset.
type Offsets map[int]int64

func kafkaClient(brokers []string, dialer *kafka.Dialer) (*kafka.Client, func()) {
	// A Transport keeps a pool per broker with a goroutine refreshing its
	// metadata every few seconds until CloseIdleConnections: one left open
	// per call of the helpers below, which serve and the drain loops call
	// many times a second, piles up goroutines, connections and metadata
	// requests on the brokers without end.
	tr := &kafka.Transport{}
	if dialer != nil {
		tr.TLS, tr.SASL = dialer.TLS, dialer.SASLMechanism
	}
	return &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 10 * time.Second}, tr.CloseIdleConnections
}

// EndOffsets returns the offset after the last message of each partition of
// topic.
func EndOffsets(ctx context.Context, brokers []string, dialer *kafka.Dialer, topic string) (Offsets, error) {
	cl, done := kafkaClient(brokers, dialer)
	defer done()
	meta, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, err
	}
	if len(meta.Topics) == 0 || meta.Topics[0].Error != nil {
		return nil, fmt.Errorf("topic %s not found", topic)
	}
	var req []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		req = append(req, kafka.LastOffsetOf(p.ID))
	}
	lo, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, err
	}
	out := Offsets{}
	for _, p := range lo.Topics[topic] {
		if p.Error != nil {
			return nil, p.Error
		}
		out[p.Partition] = p.LastOffset
	}
	return out, nil
}

// CommittedOffsets returns the group's committed offset of each partition
// of topic (absent or negative: nothing committed).
func CommittedOffsets(ctx context.Context, brokers []string, dialer *kafka.Dialer, group, topic string, partitions []int) (Offsets, error) {
	cl, done := kafkaClient(brokers, dialer)
	defer done()
	of, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: partitions}})
	if err != nil {
		return nil, err
	}
	out := Offsets{}
	for _, p := range of.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// Behind returns how many messages below ends the group has not committed.
func Behind(ctx context.Context, brokers []string, dialer *kafka.Dialer, group, topic string, ends Offsets) (int64, error) {
	parts := make([]int, 0, len(ends))
	for p := range ends {
		parts = append(parts, p)
	}
	committed, err := CommittedOffsets(ctx, brokers, dialer, group, topic, parts)
	if err != nil {
		return 0, err
	}
	var lag int64
	for p, end := range ends {
		if c := max(committed[p], 0); end > c {
			lag += end - c
		}
	}
	return lag, nil
}

// GroupLag returns how many messages of topic the group has not committed
// yet, summed over partitions.
func GroupLag(ctx context.Context, brokers []string, dialer *kafka.Dialer, group, topic string) (int64, error) {
	ends, err := EndOffsets(ctx, brokers, dialer, topic)
	if err != nil {
		return 0, err
	}
	return Behind(ctx, brokers, dialer, group, topic, ends)
}
