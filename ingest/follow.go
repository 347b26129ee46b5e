package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/schemas"
)

// FollowerConfig configures a Follower. Zero values take the defaults
// named.
type FollowerConfig struct {
	Brokers []string
	Dialer  *kafka.Dialer // TLS and SASL; nil = plain
	// Streams to follow, each on its default topic; default the registry:
	// licences, meters and rigs.
	Streams []schemas.Stream
	// Start gives, per stream, the offset each partition starts at: the
	// consumer group's committed offsets when the copy was loaded from
	// storage just after reading them (everything before them is stored,
	// so in the copy). Absent partitions start at their first offset.
	Start map[schemas.Stream]Offsets
	// MaxBytes bounds one message; default schemas.DefaultMaxMessageBytes.
	MaxBytes int
	// Grace is how long fetches may fail before Ready says so; default 5s.
	Grace time.Duration
}

// Follower keeps an in-memory copy of some streams (the registry) current
// in every process: it reads every partition of their topics outside the
// consumer groups (a Tail), decodes and validates each message as the
// consumers do, and hands the accepted records to its hook in batches.
// Records the consumers reject are skipped here too (the consumers file
// them). Tombstones take effect at their message's time, as stored. Its
// Reached and Ready are safe for concurrent use.
type Follower struct {
	cfg    FollowerConfig
	tail   *Tail
	apply  BatchHook
	dec    Decoder
	stream map[string]schemas.Stream // by topic
}

// NewFollower returns a follower handing batches to apply; Run follows.
func NewFollower(cfg FollowerConfig, apply BatchHook, log *zap.Logger) (*Follower, error) {
	if apply == nil {
		return nil, errors.New("follower: no hook to apply records to")
	}
	if len(cfg.Streams) == 0 {
		cfg.Streams = []schemas.Stream{schemas.Licenses, schemas.Meters, schemas.Rigs}
	}
	f := &Follower{cfg: cfg, apply: apply, dec: Decoder{MaxBytes: cfg.MaxBytes}, stream: map[string]schemas.Stream{}}
	tc := TailConfig{Brokers: cfg.Brokers, Dialer: cfg.Dialer, Start: map[string]Offsets{}, Grace: cfg.Grace}
	for _, s := range cfg.Streams {
		tc.Topics = append(tc.Topics, s.Topic())
		tc.Start[s.Topic()] = cfg.Start[s]
		f.stream[s.Topic()] = s
	}
	if log == nil {
		log = zap.NewNop()
	}
	t, err := NewTail(tc, log.With(zap.String("component", "follower")))
	if err != nil {
		return nil, err
	}
	f.tail = t
	return f, nil
}

// Run follows until ctx ends; see Tail.Run.
func (f *Follower) Run(ctx context.Context) error {
	b := &schemas.Batch{}
	return f.tail.Run(ctx, func(msgs []kafka.Message) error {
		b.Reset()
		for i := range msgs {
			m := &msgs[i]
			s := f.stream[m.Topic]
			src := Source{Name: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, Line: -1}
			f.dec.JSON(s, src, m.Key, m.Value, m.Time, b)
		}
		b.Rejects = b.Rejects[:0]
		if b.Len() > 0 {
			f.apply(b)
		}
		return nil
	})
}

// Reached reports whether the follower has applied stream s up to ends
// (EndOffsets): every record produced before them is in the copy.
func (f *Follower) Reached(s schemas.Stream, ends Offsets) bool {
	return f.tail.Reached(s.Topic(), ends)
}

// Ready returns why the follower cannot fetch, or nil.
func (f *Follower) Ready() error { return f.tail.Ready() }
