package main

import (
	"context"
	"errors"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/ingest"
)

// leaderTopic elects the one serve process that runs detection: the
// process that the "rigwatch.detect" group assigns its partition 0. Alerts
// then have a single writer, so a person's acknowledgement cannot race a
// second detector's stale update; when the leader dies, the group moves the
// partition, and with it detection, to a survivor within the session
// timeout.
const leaderTopic = "rigwatch.leader"

// asLeader runs lead for as long as this process holds the leadership,
// again each time it regains it, until ctx ends.
func asLeader(ctx context.Context, rt *runtime, lead func(ctx context.Context)) error {
	if err := ingest.EnsureTopics(ctx, rt.brokers, rt.dialer, 1, leaderTopic); err != nil {
		return err
	}
	log := rt.log.With(zap.String("component", "leader"))
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:             rt.cfg.KafkaGroup + ".detect",
		Brokers:        rt.brokers,
		Dialer:         rt.dialer,
		Topics:         []string{leaderTopic},
		SessionTimeout: 10 * time.Second,
		// No offsets are committed: the partition is a token, not a queue.
		StartOffset: kafka.LastOffset,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {}),
	})
	if err != nil {
		return err
	}
	defer group.Close()
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			log.Warn("cannot join the detection group; retrying", zap.Error(err))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		leading := false
		for _, p := range gen.Assignments[leaderTopic] {
			leading = leading || p.ID == 0
		}
		if !leading {
			log.Info("another process runs detection", zap.Int32("generation", gen.ID))
			continue
		}
		log.Info("this process runs detection", zap.Int32("generation", gen.ID))
		gen.Start(func(gctx context.Context) {
			lctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-gctx.Done():
				case <-lctx.Done():
				}
				cancel()
			}()
			lead(lctx)
		})
	}
}
