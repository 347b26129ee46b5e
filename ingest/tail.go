package ingest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// TailConfig configures a Tail. Zero values take the defaults named.
type TailConfig struct {
	Brokers []string
	Dialer  *kafka.Dialer // TLS and SASL; nil = plain
	Topics  []string
	// Start gives, per topic, the offset each partition starts at; a
	// partition it does not name starts at StartAt. Negative offsets (no
	// commit yet) count as absent.
	Start map[string]Offsets
	// StartAt is where unnamed partitions start: kafka.FirstOffset
	// (default, the whole topic) or kafka.LastOffset (only what comes next).
	// Partitions added to a topic later always start at their first offset.
	StartAt int64
	// MaxBatch bounds the messages handed over at once; default 10,000.
	MaxBatch int
	// MaxWait is how long a fetch waits for new messages; default 250ms.
	MaxWait time.Duration
	// Rescan is how often new partitions are looked for; default 30s.
	Rescan time.Duration
	// Grace is how long fetches may fail before Ready says so; default 5s.
	Grace time.Duration
}

// Validate checks the configuration and fills defaults.
func (c *TailConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("tail: no Kafka brokers given")
	}
	if len(c.Topics) == 0 {
		return errors.New("tail: no topics given")
	}
	if c.StartAt == 0 {
		c.StartAt = kafka.FirstOffset
	}
	if c.StartAt != kafka.FirstOffset && c.StartAt != kafka.LastOffset {
		return fmt.Errorf("tail: StartAt %d is neither kafka.FirstOffset nor kafka.LastOffset", c.StartAt)
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 10_000
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 250 * time.Millisecond
	}
	if c.Rescan <= 0 {
		c.Rescan = 30 * time.Second
	}
	return nil
}

// Tail reads every partition of its topics outside any consumer group, so
// that every process sees every message: what each process must hold in
// full (the registry) or show in full (the alerts board). Its Position,
// Reached and Ready are safe to call concurrently with Run.
type Tail struct {
	cfg    TailConfig
	log    *zap.Logger
	health *fetchHealth

	mu  sync.Mutex
	pos map[string]Offsets // per topic, the offset after the last message handed over
}

// NewTail returns a tail; Run reads.
func NewTail(cfg TailConfig, log *zap.Logger) (*Tail, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Tail{cfg: cfg, log: log.With(zap.String("component", "tail"), zap.Strings("topics", cfg.Topics)),
		health: newFetchHealth(cfg.Grace), pos: map[string]Offsets{}}, nil
}

// Position returns, per partition of topic, the offset after the last
// message handed over (where reading started, before any).
func (t *Tail) Position(topic string) Offsets {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.pos[topic])
}

// Reached reports whether every partition of topic named in ends has been
// handed over up to its end offset.
func (t *Tail) Reached(topic string, ends Offsets) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	pos := t.pos[topic]
	for p, end := range ends {
		at, ok := pos[p]
		if end > 0 && (!ok || at < end) {
			return false
		}
	}
	return true
}

// Ready returns why the tail cannot fetch, or nil.
func (t *Tail) Ready() error {
	if err := t.health.check(); err != nil {
		return fmt.Errorf("reading %v: %w", t.cfg.Topics, err)
	}
	return nil
}

// Run reads until ctx ends and hands the messages to handle, from one
// goroutine, in batches: each partition's messages in offset order, and a
// batch as soon as no more are waiting (or MaxBatch are). A batch counts as
// handed over (Position) once handle returns. Run returns handle's error,
// or an error when the brokers refuse reading for good (Permanent);
// anything else is retried and shows in Ready. It returns nil when ctx
// ends.
func (t *Tail) Run(ctx context.Context, handle func([]kafka.Message) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan kafka.Message, t.cfg.MaxBatch)
	fatal := make(chan error, 1)
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()
	started := map[string]map[int]bool{}
	// scan starts a reader for every partition not read yet.
	scan := func(first bool) error {
		for _, topic := range t.cfg.Topics {
			parts, err := partitionStarts(ctx, t.cfg.Brokers, t.cfg.Dialer, topic, first && t.cfg.StartAt == kafka.LastOffset)
			if err != nil {
				return err
			}
			if started[topic] == nil {
				started[topic] = map[int]bool{}
			}
			for p, off := range parts {
				if started[topic][p] {
					continue
				}
				if s, ok := t.cfg.Start[topic][p]; ok && s >= 0 && first {
					off = s
				}
				started[topic][p] = true
				t.mu.Lock()
				if t.pos[topic] == nil {
					t.pos[topic] = Offsets{}
				}
				t.pos[topic][p] = off
				t.mu.Unlock()
				readers.Add(1)
				go func() {
					defer readers.Done()
					t.read(ctx, topic, p, off, msgs, fatal)
				}()
			}
		}
		return nil
	}
	for {
		err := scan(true)
		if err == nil {
			break
		}
		t.health.failed(err.Error())
		t.log.Warn("cannot list partitions; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	rescan := time.NewTicker(t.cfg.Rescan)
	defer rescan.Stop()
	batch := make([]kafka.Message, 0, t.cfg.MaxBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-fatal:
			return err
		case <-rescan.C:
			if err := scan(false); err != nil {
				t.log.Warn("cannot look for new partitions", zap.Error(err))
			}
			continue
		case m := <-msgs:
			batch = append(batch[:0], m)
		}
	drain:
		for len(batch) < t.cfg.MaxBatch {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			default:
				break drain
			}
		}
		if err := handle(batch); err != nil {
			return err
		}
		t.mu.Lock()
		for i := range batch {
			m := &batch[i]
			if at := t.pos[m.Topic][m.Partition]; m.Offset+1 > at {
				t.pos[m.Topic][m.Partition] = m.Offset + 1
			}
		}
		t.mu.Unlock()
		clear(batch)
	}
}

// read reads one partition from off into msgs until ctx ends.
func (t *Tail) read(ctx context.Context, topic string, partition int, off int64, msgs chan<- kafka.Message, fatal chan<- error) {
	log := t.log.With(zap.String("topic", topic), zap.Int("partition", partition))
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   t.cfg.Brokers,
		Dialer:    t.cfg.Dialer,
		Topic:     topic,
		Partition: partition,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   t.cfg.MaxWait,
		ErrorLogger: t.health.errorLogger(func(msg string) {
			log.Debug("kafka-go", zap.String("msg", msg))
		}),
	})
	defer r.Close()
	if err := r.SetOffset(off); err != nil {
		fatal <- fmt.Errorf("cannot read %s/%d from offset %d: %w", topic, partition, off, err)
		return
	}
	go t.health.watch(ctx, r)
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if Permanent(err) {
				select {
				case fatal <- fmt.Errorf("cannot read %s/%d: %w", topic, partition, err):
				default:
				}
				return
			}
			t.health.failed(err.Error())
			log.Warn("cannot fetch; retrying", zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case msgs <- m:
		case <-ctx.Done():
			return
		}
	}
}

// partitionStarts returns the partitions of topic with, for each, its
// first offset, or its end offset when last is set.
func partitionStarts(ctx context.Context, brokers []string, dialer *kafka.Dialer, topic string, last bool) (Offsets, error) {
	cl, done := kafkaClient(brokers, dialer)
	defer done()
	meta, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("cannot read the partitions of %s: %w", topic, err)
	}
	if len(meta.Topics) == 0 || meta.Topics[0].Error != nil {
		return nil, fmt.Errorf("topic %s not found", topic)
	}
	var req []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		if last {
			req = append(req, kafka.LastOffsetOf(p.ID))
		} else {
			req = append(req, kafka.FirstOffsetOf(p.ID))
		}
	}
	lo, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, fmt.Errorf("cannot read the offsets of %s: %w", topic, err)
	}
	out := Offsets{}
	for _, p := range lo.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("cannot read the offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		if last {
			out[p.Partition] = p.LastOffset
		} else {
			out[p.Partition] = p.FirstOffset
		}
	}
	return out, nil
}
