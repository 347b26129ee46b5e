package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/schemas"
)

// RejectPublisher sends rejects to the rejects topic.
type RejectPublisher interface {
	PublishRejects(ctx context.Context, rs []schemas.Reject) error
}

// ConsumerConfig configures one topic's consumer. Zero values take the
// defaults named.
type ConsumerConfig struct {
	Brokers       []string
	Stream        schemas.Stream
	Topic         string        // default Stream.Topic()
	GroupID       string        // default "rigwatch." + stream
	Dialer        *kafka.Dialer // TLS and SASL; nil = plain
	MaxBatch      int           // records per batch, a block of an insert; default 50,000
	FlushInterval time.Duration // flush a partial batch this often; default 1s
	MaxBytes      int           // per message; default schemas.DefaultMaxMessageBytes
	MinBackoff    time.Duration // first retry delay of a failed insert; default 200ms
	MaxBackoff    time.Duration // default 10s
	// NewInserter, if set, opens an insert kept across batches
	// (store.Store.Inserter); nil: every batch is stored with one
	// WriteBatch.
	NewInserter func() Inserter
	// InsertRows ends an insert that holds this many records; default
	// 500,000. An insert is also ended as soon as the consumer has caught
	// up with its topic (a batch reaches the end of its partitions, or none
	// comes for a FlushInterval), and once it is InsertAge old.
	InsertRows int
	InsertAge  time.Duration // default 5s
	// SessionTimeout for the consumer group; default 10s.
	SessionTimeout time.Duration
	// ShutdownTimeout bounds the final flush and commit; default 30s.
	ShutdownTimeout time.Duration
	// FetchGrace is how long fetches may fail before Ready says so;
	// default 5s.
	FetchGrace time.Duration
}

// Validate checks the configuration and fills defaults.
func (c *ConsumerConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("no Kafka brokers given")
	}
	if c.Stream == "" {
		return errors.New("no stream given")
	}
	if c.Topic == "" {
		c.Topic = c.Stream.Topic()
	}
	if c.GroupID == "" {
		c.GroupID = "rigwatch." + string(c.Stream)
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 50_000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.InsertRows <= 0 {
		c.InsertRows = 500_000
	}
	if c.InsertAge <= 0 {
		c.InsertAge = 5 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 200 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	return nil
}

// Consumer ingests one topic with at-least-once delivery: a message's offset
// is committed only after its record (or its reject) is stored. Its counters
// are safe to read concurrently with Run.
type Consumer struct {
	cfg     ConsumerConfig
	w       Writer
	rejects RejectPublisher
	hook    BatchHook
	log     *zap.Logger
	dec     Decoder

	healthy  atomic.Bool
	storeErr atomic.Pointer[string] // why the last batch could not be stored
	fetch    *fetchHealth
	consumed atomic.Int64
	stored   atomic.Int64
	rejected atomic.Int64
	commits  atomic.Int64
}

// NewConsumer returns a consumer writing with w. rejects and hook may be nil.
func NewConsumer(cfg ConsumerConfig, w Writer, rejects RejectPublisher, hook BatchHook, log *zap.Logger) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	c := &Consumer{cfg: cfg, w: w, rejects: rejects, hook: hook, dec: Decoder{MaxBytes: cfg.MaxBytes},
		log: log.With(zap.String("component", "consumer"), zap.String("topic", cfg.Topic)), fetch: newFetchHealth(cfg.FetchGrace)}
	c.healthy.Store(true)
	return c, nil
}

// Ready returns why the consumer cannot do its work, or nil: the last
// attempt to store a batch failed, or fetches have kept failing for longer
// than FetchGrace.
func (c *Consumer) Ready() error {
	if !c.healthy.Load() {
		reason := "unknown error"
		if p := c.storeErr.Load(); p != nil {
			reason = *p
		}
		return fmt.Errorf("%s: cannot store its batch: %s", c.cfg.Topic, reason)
	}
	if err := c.fetch.check(); err != nil {
		return fmt.Errorf("%s: %w", c.cfg.Topic, err)
	}
	return nil
}

// ConsumerStats counts what a consumer did.
type ConsumerStats struct {
	Topic    string `json:"topic"`
	Consumed int64  `json:"consumed"`
	Stored   int64  `json:"stored"`
	Rejected int64  `json:"rejected"`
	Commits  int64  `json:"commits"`
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() ConsumerStats {
	return ConsumerStats{Topic: c.cfg.Topic, Consumed: c.consumed.Load(), Stored: c.stored.Load(),
		Rejected: c.rejected.Load(), Commits: c.commits.Load()}
}

// Run consumes until ctx is done, then stops fetching, stores and commits
// what it holds, and returns nil. Failed fetches and inserts are retried
// (Ready reports them); Run returns an error when the brokers refuse this
// consumer for good (Permanent: not authorised, say), after storing and
// committing what it holds.
func (c *Consumer) Run(ctx context.Context) error {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:             c.cfg.GroupID,
		Brokers:        c.cfg.Brokers,
		Dialer:         c.cfg.Dialer,
		Topics:         []string{c.cfg.Topic},
		SessionTimeout: c.cfg.SessionTimeout,
		StartOffset:    kafka.FirstOffset,
		// kafka-go logs every transient error at error level; ours says
		// what matters, and notes it for Ready.
		ErrorLogger: c.fetch.errorLogger(func(msg string) { c.log.Debug("kafka-go", zap.String("msg", msg)) }),
	})
	if err != nil {
		return fmt.Errorf("cannot join consumer group %s: %w", c.cfg.GroupID, err)
	}
	// Leaving the group ends the generation the storer commits through:
	// it comes last, after the final commit.
	defer cg.Close()
	groupCtx, leave := context.WithCancel(context.Background())
	defer leave()
	fetchCtx, stopFetch := context.WithCancel(context.Background())
	defer stopFetch()
	chunks := make(chan *chunk, 16)
	f := &fetcher{c: c, out: chunks, free: make(chan *chunk, 32), stop: fetchCtx, dialer: c.cfg.Dialer,
		refused: make(chan struct{})}
	if f.dialer == nil {
		f.dialer = kafka.DefaultDialer
	}
	go f.generations(groupCtx, cg)

	// Decoding and storing overlap: while the storer writes a batch into
	// its open insert, the loop below decodes the next. The storer holds
	// the batches it wrote until their insert is ended (so that it can
	// write them again after a failure) and then hands them back through
	// free; the loop makes a new batch only while fewer than maxBatches
	// exist, enough for one insert's worth held, one written and one being
	// decoded.
	lag := newLagTracker(c.cfg.Topic)
	st := &storer{c: c, f: f, lag: lag, uncommitted: map[int]int64{}, ins: inserter(c.cfg.NewInserter, c.w)}
	storeCtx, cancelStore := context.WithCancel(context.Background())
	defer cancelStore()
	work := make(chan pending)
	maxBatches := (c.cfg.InsertRows+c.cfg.MaxBatch-1)/c.cfg.MaxBatch + 2
	free := make(chan *schemas.Batch, maxBatches)
	made := 1
	storerDone := make(chan struct{})
	go func() {
		defer close(storerDone)
		st.run(storeCtx, work, free)
	}()

	b := &schemas.Batch{}
	last := map[int]int64{}
	hwm := map[int]int64{} // per partition, the high-water mark its last fetch saw
	consumed := consumedRecords.WithLabelValues(string(c.cfg.Stream))
	tick := time.NewTicker(c.cfg.FlushInterval)
	defer tick.Stop()
	// handOver gives the batch to the storer, waiting for it when full is
	// set (the batch reached MaxBatch), and takes the next batch; it reports
	// whether it did both.
	handOver := func(full bool) bool {
		p := pending{b: b, last: last, caughtUp: true}
		for part, o := range last {
			p.caughtUp = p.caughtUp && o+1 >= hwm[part]
		}
		if full {
			select {
			case work <- p:
			case <-ctx.Done():
				return false
			}
		} else {
			select {
			case work <- p:
			default:
				return false
			}
		}
		b, last = nil, map[int]int64{}
		select {
		case b = <-free:
			return true
		default:
		}
		if made < maxBatches {
			b, made = &schemas.Batch{}, made+1
			return true
		}
		select {
		case b = <-free:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// shutdown stops fetching and gives the storer a bounded time to store
	// and commit what is held; what it cannot store is redelivered after
	// restart.
	shutdown := func() error {
		stopFetch()
		sctx, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
		defer cancel()
		complete := true
		if len(last) > 0 {
			select {
			case work <- pending{b: b, last: last}:
			case <-sctx.Done():
				complete = false
			}
		}
		close(work)
		select {
		case <-storerDone:
			complete = complete && st.clean
		case <-sctx.Done():
			cancelStore()
			<-storerDone
			complete = false
		}
		if !complete {
			c.log.Warn("stopped with records not stored or not committed; they will be redelivered")
		}
		return f.refusal()
	}
	for {
		select {
		case ch := <-chunks:
			c.consumed.Add(int64(len(ch.msgs)))
			consumed.Add(float64(len(ch.msgs)))
			lag.taken(ch.partition, ch.msgs[0].Offset, ch.hwm)
			hwm[ch.partition] = ch.hwm
			end := len(ch.msgs) - 1
			for i := range ch.msgs {
				m := &ch.msgs[i]
				src := Source{Name: c.cfg.Topic, Partition: int32(ch.partition), Offset: m.Offset, Line: -1}
				if !c.dec.JSON(c.cfg.Stream, src, m.Key, m.Value, m.Time, b) {
					c.rejected.Add(1)
				}
				if b.Len() >= c.cfg.MaxBatch {
					last[ch.partition] = m.Offset
					if !handOver(true) {
						return shutdown()
					}
					if i == end {
						end = -1 // nothing of this chunk is left for the next batch
					}
				}
			}
			if end >= 0 {
				last[ch.partition] = ch.msgs[end].Offset
			}
			f.recycle(ch)
		case <-tick.C:
			// A partial batch goes when the storer is idle; while it is
			// busy the batch grows, up to MaxBatch. If no batch is free
			// it waits for the next tick.
			if len(last) > 0 && !handOver(false) && b == nil {
				return shutdown()
			}
		case <-f.refused:
			// The brokers refuse this consumer for good: store and
			// commit what it holds, then say why.
			return shutdown()
		case <-ctx.Done():
			return shutdown()
		}
	}
}

// pending is a decoded batch and, per partition, the offset of its last
// message.
type pending struct {
	b    *schemas.Batch
	last map[int]int64
	// caughtUp: the batch reaches the end of every partition it holds, as
	// their last fetches saw it: a live stream, to be stored at once.
	caughtUp bool
}

// storer writes a consumer's batches in order through its open insert,
// ends the insert, and only then commits the batches' offsets. It owns the
// uncommitted offsets and the batches it holds.
type storer struct {
	c   *Consumer
	f   *fetcher
	lag *lagTracker
	ins Inserter
	// held are the batches written into the open insert, in order; heldLen
	// counts their records, opened is when the first was written, added
	// when the last was.
	held    []pending
	heldLen int
	opened  time.Time
	added   time.Time
	// uncommitted holds, per partition, the offset of the last stored
	// message not committed yet. A failed commit is retried on every
	// tick: with no new messages it would otherwise never be committed,
	// the group's lag would never reach zero, and live detection, which
	// waits for the context topics to be committed, would stall.
	uncommitted    map[int]int64
	commitFailures int
	clean          bool // every batch handed over was stored and committed
}

// run stores and commits the batches from work, handing each back through
// free once stored, until work is closed or ctx ends. An insert is ended
// when a batch comes that reaches the end of its partitions or none comes
// for a FlushInterval (the consumer has caught up), when it holds
// InsertRows records and when it is InsertAge old: a live stream is stored
// as soon as it arrives, a backlog in large inserts even when the machine
// is slow.
func (s *storer) run(ctx context.Context, work <-chan pending, free chan<- *schemas.Batch) {
	tick := time.NewTicker(s.c.cfg.FlushInterval)
	defer tick.Stop()
	defer s.ins.Abort()
	s.clean = true
	for {
		select {
		case p, ok := <-work:
			if !ok {
				if !s.flush(ctx, free) {
					s.clean = false
					return
				}
				s.commit(ctx)
				s.clean = s.clean && len(s.uncommitted) == 0
				return
			}
			if !s.add(ctx, p, free) {
				s.clean = false
				return
			}
			if p.caughtUp || s.heldLen >= s.c.cfg.InsertRows || time.Since(s.opened) >= s.c.cfg.InsertAge {
				if !s.flush(ctx, free) {
					s.clean = false
					return
				}
			}
			s.commit(ctx)
		case <-tick.C:
			idle := time.Since(s.added) >= s.c.cfg.FlushInterval
			if len(s.held) > 0 && (idle || time.Since(s.opened) >= s.c.cfg.InsertAge) && !s.flush(ctx, free) {
				s.clean = false
				return
			}
			s.commit(ctx)
		case <-ctx.Done():
			s.clean = false
			return
		}
	}
}

// add writes p into the open insert and holds it. After a failure it
// writes everything held again, and ends the insert, until that succeeds;
// it reports false only when ctx ends first.
func (s *storer) add(ctx context.Context, p pending, free chan<- *schemas.Batch) bool {
	s.added = time.Now()
	if len(s.held) == 0 {
		s.opened = s.added
	}
	s.held = append(s.held, p)
	s.heldLen += p.b.Len()
	if err := s.c.write(ctx, s.ins, p.b); err != nil {
		if !s.resend(ctx, err) {
			return false
		}
		s.settle(free)
	}
	return true
}

// flush ends the open insert, and so stores what is held (resending it
// after a failure); it reports false only when ctx ends first.
func (s *storer) flush(ctx context.Context, free chan<- *schemas.Batch) bool {
	if len(s.held) == 0 {
		return true
	}
	if err := s.ins.Flush(ctx); err != nil && !s.resend(ctx, err) {
		return false
	}
	s.c.log.Debug("insert ended", zap.Int("records", s.heldLen), zap.Int("batches", len(s.held)),
		zap.Duration("open", time.Since(s.opened)))
	s.settle(free)
	return true
}

// resend retries, with back-off, writing every held batch into a new
// insert and ending it, until that succeeds or ctx ends.
func (s *storer) resend(ctx context.Context, err error) bool {
	delay := s.c.cfg.MinBackoff
	for {
		s.ins.Abort()
		reason := err.Error()
		s.c.storeErr.Store(&reason)
		s.c.healthy.Store(false)
		insertErrors.WithLabelValues(string(s.c.cfg.Stream)).Inc()
		s.c.log.Warn("cannot store batch; retrying without committing", zap.Int("records", s.heldLen),
			zap.Duration("backoff", delay), zap.Error(err))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		if delay *= 2; delay > s.c.cfg.MaxBackoff {
			delay = s.c.cfg.MaxBackoff
		}
		err = nil
		for _, p := range s.held {
			if err = s.c.write(ctx, s.ins, p.b); err != nil {
				break
			}
		}
		if err == nil {
			if err = s.ins.Flush(ctx); err == nil {
				return true
			}
		}
	}
}

// settle marks the held batches stored: counts them, calls the hook, notes
// their offsets for commit and hands them back.
func (s *storer) settle(free chan<- *schemas.Batch) {
	c := s.c
	c.healthy.Store(true)
	took := time.Since(s.opened)
	// At the end of the stream the batches go back empty and new: a live
	// trickle needs none of a backlog's arrays (the registry's streams
	// would hold every record they loaded), and the collector takes them.
	fresh := len(s.held) > 0 && s.held[len(s.held)-1].caughtUp
	for _, p := range s.held {
		observeInsert(c.cfg.Stream, p.b, took)
		c.stored.Add(int64(p.b.Len() - len(p.b.Rejects)))
		if c.hook != nil {
			c.hook(p.b)
		}
		for part, o := range p.last {
			if u, ok := s.uncommitted[part]; !ok || o > u {
				s.uncommitted[part] = o
			}
		}
		p.b.Reset()
		if fresh {
			p.b = &schemas.Batch{}
		}
		free <- p.b
	}
	clear(s.held)
	s.held, s.heldLen = s.held[:0], 0
}

// commit commits the stored offsets not committed yet.
func (s *storer) commit(ctx context.Context) {
	if len(s.uncommitted) == 0 {
		return
	}
	next := make(map[int]int64, len(s.uncommitted))
	for p, o := range s.uncommitted {
		next[p] = o + 1 // Kafka's committed offset is the next to read
	}
	done, err := s.f.commit(next)
	if err != nil {
		// The records are stored; redelivering them changes nothing, so a
		// failed commit is retried, not fatal. After a rebalance the
		// partition's new owner redelivers and commits instead.
		if s.commitFailures++; s.commitFailures == 1 || s.commitFailures%30 == 0 {
			s.c.log.Warn("cannot commit offsets; retrying", zap.Int("attempts", s.commitFailures), zap.Error(err))
		}
		if s.commitFailures >= 60 {
			s.c.log.Warn("giving up committing offsets of partitions this consumer may no longer own")
			clear(s.uncommitted)
			s.commitFailures = 0
		}
		return
	}
	if len(done) > 0 {
		s.c.commits.Add(1)
		s.c.log.Debug("committed", zap.Any("offsets", done))
	}
	for p := range done {
		s.lag.committed(p, s.uncommitted[p])
	}
	// Partitions no longer ours were left to their new owner.
	clear(s.uncommitted)
	s.commitFailures = 0
}

// write stamps b and sends it into ins, publishing its rejects meanwhile:
// a round trip to the broker need not wait for one to ClickHouse.
func (c *Consumer) write(ctx context.Context, ins Inserter, b *schemas.Batch) error {
	stamp(b)
	var published chan error
	if c.rejects != nil && len(b.Rejects) > 0 {
		published = make(chan error, 1)
		go func() { published <- c.rejects.PublishRejects(ctx, b.Rejects) }()
	}
	err := ins.Write(ctx, b)
	if published != nil {
		err = errors.Join(err, <-published)
	}
	return err
}
