// Package leader elects the one process of a group that runs a singleton
// task (in rigwatch: live detection), on Kafka itself: the member of a
// consumer group that the group assigns partition 0 of a one-partition
// topic leads. No offsets are committed; the partition is a token, not a
// queue. When the leader dies, the group moves the partition, and with it
// the task, to a survivor within the session timeout; at a rebalance the
// old leader's term ends before the new one's begins.
package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/ingest"
)

// DefaultTopic is the token topic rigwatch elects its detector on.
const DefaultTopic = "rigwatch.leader"

// ErrLeadEnded is returned by Run when the lead function returned nil while
// this process still led: a task that stops by itself is a failure.
var ErrLeadEnded = errors.New("the leader's task ended while it still led")

// Config configures an Elector. Zero values take the defaults named.
type Config struct {
	Brokers []string
	Dialer  *kafka.Dialer // TLS and SASL; nil = plain
	// GroupID is the election's consumer group: every process that
	// competes uses the same one. Required.
	GroupID string
	// Topic is the one-partition token topic, created if missing; default
	// DefaultTopic.
	Topic string
	// SessionTimeout bounds how long a dead leader keeps the token;
	// default 10s.
	SessionTimeout time.Duration
	// RetryEvery is the wait between failed attempts to join; default 1s.
	RetryEvery time.Duration
	// Task names what the leader runs, for the log ("this process runs
	// detection"); default "the task".
	Task string
	// Grace is how long joins may keep failing before Ready says so (a
	// rebalance fails a join or two by design); default 5s.
	Grace time.Duration
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("leader election: no Kafka brokers given")
	}
	if c.GroupID == "" {
		return errors.New("leader election: no group id given")
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.RetryEvery <= 0 {
		c.RetryEvery = time.Second
	}
	if c.Task == "" {
		c.Task = "the task"
	}
	if c.Grace <= 0 {
		c.Grace = 5 * time.Second
	}
	return nil
}

// Elector takes part in one election. Its Leading and Ready are safe to
// call concurrently with Run.
type Elector struct {
	cfg     Config
	log     *zap.Logger
	leading atomic.Bool

	mu           sync.Mutex
	joinErr      error     // the last failed attempt to join, until one succeeds
	failingSince time.Time // the first of the failed attempts since the last success
}

// New returns an elector; Run takes part in the election.
func New(cfg Config, log *zap.Logger) (*Elector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Elector{cfg: cfg, log: log.With(zap.String("component", "leader"), zap.String("group", cfg.GroupID))}, nil
}

// Leading reports whether this process leads now.
func (e *Elector) Leading() bool { return e.leading.Load() }

// Ready returns why the elector cannot take part in the election (joins
// have failed for longer than Grace), or nil.
func (e *Elector) Ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.joinErr != nil && time.Since(e.failingSince) > e.cfg.Grace {
		return fmt.Errorf("cannot join the leader election: %w", e.joinErr)
	}
	return nil
}

func (e *Elector) setJoinErr(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case err == nil:
		e.failingSince = time.Time{}
	case e.joinErr == nil:
		e.failingSince = time.Now()
	}
	e.joinErr = err
}

// Run takes part in the election until ctx ends. Each time this process
// gains the leadership it calls lead with a context that ends when the
// leadership is lost or ctx ends, and waits for lead to return before it
// competes again. lead must run until its context ends: Run returns lead's
// error (ErrLeadEnded for nil) when lead returns earlier. Run also returns
// an error when the group refuses this process for good
// (ingest.Permanent: an authorisation failure, say); brokers that do
// not answer, and groups that rebalance, are retried, and Ready reports
// them meanwhile. It returns nil
// when ctx ends.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context) error) error {
	if err := ingest.EnsureTopics(ctx, e.cfg.Brokers, e.cfg.Dialer, 1, e.cfg.Topic); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("leader election: %w", err)
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:             e.cfg.GroupID,
		Brokers:        e.cfg.Brokers,
		Dialer:         e.cfg.Dialer,
		Topics:         []string{e.cfg.Topic},
		SessionTimeout: e.cfg.SessionTimeout,
		StartOffset:    kafka.LastOffset,
		// kafka-go logs every transient error; what matters is said above.
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			e.log.Debug("kafka-go", zap.String("msg", fmt.Sprintf(msg, args...)))
		}),
		Logger: kafka.LoggerFunc(func(msg string, args ...any) {
			e.log.Debug("kafka-go", zap.String("msg", fmt.Sprintf(msg, args...)))
		}),
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	defer group.Close()
	// A failed term cancels rctx, which ends the wait for the next
	// generation.
	rctx, cancel := context.WithCancel(ctx)
	var (
		failMu sync.Mutex
		failed error
		terms  sync.WaitGroup
	)
	defer func() {
		cancel()
		terms.Wait() // a term in progress ends before the group is left
	}()
	for {
		gen, err := group.Next(rctx)
		if err != nil {
			failMu.Lock()
			f := failed
			failMu.Unlock()
			switch {
			case f != nil:
				return f
			case ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed):
				return nil
			case ingest.Permanent(err):
				return fmt.Errorf("cannot join the leader election group %s: %w", e.cfg.GroupID, err)
			}
			e.setJoinErr(err)
			e.log.Warn("cannot join the leader election; retrying", zap.Error(err))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(e.cfg.RetryEvery):
			}
			continue
		}
		e.setJoinErr(nil)
		leading := false
		for _, p := range gen.Assignments[e.cfg.Topic] {
			leading = leading || p.ID == 0
		}
		if !leading {
			e.log.Info("another process runs "+e.cfg.Task, zap.Int32("generation", gen.ID))
			continue
		}
		e.log.Info("this process runs "+e.cfg.Task, zap.Int32("generation", gen.ID))
		terms.Add(1)
		gen.Start(func(gctx context.Context) {
			defer terms.Done()
			lctx, stop := context.WithCancel(rctx)
			defer stop()
			unhook := context.AfterFunc(gctx, stop)
			defer unhook()
			e.leading.Store(true)
			err := lead(lctx)
			e.leading.Store(false)
			if lctx.Err() != nil {
				return // the term ended: lead stopped as asked
			}
			if err == nil {
				err = ErrLeadEnded
			}
			failMu.Lock()
			failed = err
			failMu.Unlock()
			cancel()
		})
	}
}
