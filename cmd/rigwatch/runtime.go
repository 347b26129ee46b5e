package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/localch"
	"github.com/rigwatch/rigwatch/internal/localkafka"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// runtime holds the shared parts a subcommand runs on: storage, the broker
// (embedded or not), the logger. close stops them in reverse order.
type runtime struct {
	cfg     config
	log     *zap.Logger
	store   *store.Store
	ch      *localch.Server
	broker  *localkafka.Broker
	brokers []string
	dialer  *kafka.Dialer // nil: plain TCP
}

// allTopics lists every topic rigwatch reads or writes.
func allTopics() []string {
	ts := []string{schemas.AlertsTopic, schemas.RejectsTopic}
	for _, s := range schemas.Streams {
		ts = append(ts, s.Topic())
	}
	return ts
}

// openRuntime connects to (or starts) ClickHouse and, when withKafka, to (or
// starts) the broker.
func openRuntime(ctx context.Context, g *globalFlags, withKafka bool) (*runtime, error) {
	cfg, err := g.resolve()
	if err != nil {
		return nil, err
	}
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return nil, usageError{err}
	}
	rt := &runtime{cfg: cfg, log: log}
	addr := cfg.ClickHouse
	if addr == "" {
		rt.ch, err = localch.Start(ctx, filepath.Join(cfg.DataDir, "clickhouse"), log)
		if err != nil {
			rt.close()
			return nil, err
		}
		addr = rt.ch.Addr
	}
	chTLS, err := ingest.TLSConfig(cfg.ClickHouseTLS, cfg.ClickHouseTLSCA, cfg.ClickHouseTLSInsecure)
	if err != nil {
		rt.close()
		return nil, usageError{err}
	}
	rt.store, err = openStore(ctx, store.Config{Addr: addr, Cluster: cfg.ClickHouseCluster, Database: cfg.ClickHouseDB,
		Username: cfg.ClickHouseUser, Password: cfg.ClickHousePassword, TLS: chTLS}, log)
	if err != nil {
		rt.close()
		return nil, err
	}
	if withKafka {
		if cfg.Kafka == "" {
			rt.broker, err = localkafka.Start(filepath.Join(cfg.DataDir, "kafka"), 0, allTopics()...)
			if err != nil {
				rt.close()
				return nil, err
			}
			rt.brokers = rt.broker.Addrs()
			log.Info("embedded Kafka broker", zap.Strings("brokers", rt.brokers))
		} else {
			rt.brokers = strings.Split(cfg.Kafka, ",")
			rt.dialer, err = ingest.KafkaSecurity{TLS: cfg.KafkaTLS, CAFile: cfg.KafkaTLSCA, InsecureSkipVerify: cfg.KafkaTLSInsecure,
				SASLMechanism: cfg.KafkaSASLMechanism, Username: cfg.KafkaSASLUser, Password: cfg.KafkaSASLPassword}.Dialer()
			if err != nil {
				rt.close()
				return nil, usageError{err}
			}
			if err := ingest.EnsureTopics(ctx, rt.brokers, rt.dialer, localkafka.DefaultPartitions, allTopics()...); err != nil {
				rt.close()
				return nil, err
			}
		}
	}
	return rt, nil
}

// openStore retries while a just-started server finishes starting.
func openStore(ctx context.Context, cfg store.Config, log *zap.Logger) (*store.Store, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := store.Open(ctx, cfg, log)
		if err == nil {
			return st, nil
		}
		// Only a server still starting is worth waiting for; a refused
		// password or a bad query will not get better.
		var ex *clickhouse.Exception
		if time.Now().After(deadline) || errors.Is(err, context.Canceled) || errors.As(err, &ex) {
			return nil, fmt.Errorf("cannot use ClickHouse at %s: %w", cfg.Addr, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (rt *runtime) close() {
	if rt.store != nil {
		rt.store.Close()
	}
	if rt.broker != nil {
		rt.broker.Close()
	}
	if rt.ch != nil {
		rt.ch.Stop()
	}
	if rt.log != nil {
		_ = rt.log.Sync()
	}
}

// loadRegistry rebuilds the in-memory registry from storage.
func (rt *runtime) loadRegistry(ctx context.Context) (*registry.Index, error) {
	return rt.loadRegistryScope(ctx, store.Scope{})
}

// loadRegistryScope loads the part of the registry scope names.
func (rt *runtime) loadRegistryScope(ctx context.Context, scope store.Scope) (*registry.Index, error) {
	ix, err := registry.New(registry.Config{}, rt.log)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := rt.store.LoadRegistryScope(ctx, ix, scope); err != nil {
		if !errors.Is(err, registry.ErrInvalidInput) {
			return nil, err
		}
		// Stored records the index refuses are skipped; go on with the rest.
		rt.log.Warn("registry loaded with records skipped", zap.Error(err))
	}
	rt.log.Info("registry loaded", zap.Duration("elapsed", time.Since(start)))
	return ix, nil
}
