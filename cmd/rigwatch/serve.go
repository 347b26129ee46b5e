package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/api"
	"github.com/rigwatch/rigwatch/detect"
	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/leader"
	"github.com/rigwatch/rigwatch/notify"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/web"
)

func newServeCmd(g *globalFlags) *cobra.Command {
	var httpAddr string
	cmd := &cobra.Command{
		Use:         "serve",
		Short:       "Ingest every input topic into ClickHouse and serve the HTTP API until stopped",
		Args:        exactArgs(0, "no arguments"),
		Annotations: map[string]string{logLevelAnnotation: "info"},
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := httpAddrOf(cmd, httpAddr)
			if err != nil {
				return err
			}
			rt, err := openRuntime(cmd.Context(), g, true)
			if err != nil {
				return err
			}
			defer rt.close()
			startProfiling(lookupEnv("RIGWATCH_PPROF_ADDR"), rt.log)
			return serve(cmd.Context(), rt, addr, serveOptions{detect: true})
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http", "127.0.0.1:8080", "HTTP listen address (env RIGWATCH_HTTP_ADDR)")
	return cmd
}

func httpAddrOf(cmd *cobra.Command, flagValue string) (string, error) {
	if !cmd.Flags().Changed("http") {
		if v := lookupEnv("RIGWATCH_HTTP_ADDR"); v != "" {
			return v, nil
		}
	}
	if flagValue == "" {
		return "", usagef("--http must not be empty")
	}
	return flagValue, nil
}

// serveOptions adjust serve for the commands that reuse it.
type serveOptions struct {
	detect bool              // evaluate the rules live
	ready  func(addr string) // told the HTTP address once it listens
	// detectConfig, if set, adjusts the detector's configuration (the
	// demo sizes its lookback to its data).
	detectConfig func(*detect.Config)
}

// readiness is a part that can say why it cannot do its work now.
type readiness interface{ Ready() error }

// serve builds serve's parts and runs them as one group until ctx ends or
// one fails (runParts), then stops the HTTP server last. Each part stops
// in its own order: the consumers stop fetching, store and commit what
// they hold; the detector finishes its pass. A part that fails ends serve
// with its reason (exit 1).
func serve(ctx context.Context, rt *runtime, httpAddr string, opts serveOptions) error {
	log := rt.log
	// Every process holds the whole registry: note where the registry
	// consumer groups stand (everything before is stored), load from
	// storage, then follow every partition of the registry topics from
	// there, outside the groups.
	start, err := registryStart(ctx, rt)
	if err != nil {
		return err
	}
	reg, err := rt.loadRegistry(ctx)
	if err != nil {
		return err
	}
	follower, err := ingest.NewFollower(ingest.FollowerConfig{Brokers: rt.brokers, Dialer: rt.dialer, Start: start,
		MaxBytes: rt.cfg.MaxMessageBytes}, reg.Hook(), log)
	if err != nil {
		return err
	}
	parts := []part{{"registry follower", follower.Run}}
	ready := []readiness{follower}

	rejects := ingest.KafkaRejects{W: ingest.NewWriter(rt.brokers, schemas.RejectsTopic, rt.dialer)}
	defer rejects.W.Close()
	var consumers []*ingest.Consumer
	for _, s := range schemas.Streams {
		c, err := ingest.NewConsumer(ingest.ConsumerConfig{
			Brokers:       rt.brokers,
			Dialer:        rt.dialer,
			Stream:        s,
			GroupID:       rt.cfg.KafkaGroup + "." + string(s),
			MaxBatch:      rt.cfg.BatchSize,
			FlushInterval: rt.cfg.FlushInterval,
			MaxBytes:      rt.cfg.MaxMessageBytes,
			NewInserter:   func() ingest.Inserter { return rt.store.Inserter() },
		}, rt.store, rejects, markLate(rt.store, log, countUnknownMeters(reg.UnknownReadings, nil)), log)
		if err != nil {
			return err
		}
		consumers = append(consumers, c)
		parts = append(parts, part{"consumer of " + s.Topic(), c.Run})
		ready = append(ready, c)
	}

	// Alerts: this process's changes go out on the alerts topic, and the
	// board follows the topic into this process's broadcaster, so every
	// process shows every change, whoever made it.
	bc := notify.NewBroadcaster(0)
	board, err := notify.NewBoard(rt.brokers, rt.dialer, schemas.AlertsTopic, bc, log)
	if err != nil {
		return err
	}
	parts = append(parts, part{"alerts board", board.Run}, part{"alert state", foldAlertState(rt)})
	ready = append(ready, board)
	sink := &notify.Sink{Store: rt.store, Topic: alertsTopic(rt), Log: log}
	defer sink.Topic.Close()

	srv := api.New(api.Config{Addr: httpAddr, Ready: func(ctx context.Context) error {
		if err := rt.store.Ping(ctx); err != nil {
			return fmt.Errorf("ClickHouse: %w", err)
		}
		for _, r := range ready {
			if err := r.Ready(); err != nil {
				return err
			}
		}
		return nil
	}}, log)
	if err := api.Mount(srv, api.Deps{Store: rt.store, Registry: reg, Broadcaster: bc, Announce: sink.Announce,
		AdminToken: rt.cfg.APIAdminToken, Version: rigwatchVersion(), TariffKZTPerKWh: rt.cfg.TariffKZTPerKWh,
		Settings: map[string]any{"kafka_group": rt.cfg.KafkaGroup, "batch_size": rt.cfg.BatchSize,
			"flush_interval": rt.cfg.FlushInterval.String(), "detect_every": rt.cfg.DetectEvery.String()},
		Log: log}); err != nil {
		return err
	}
	srv.Handle("/", web.Handler())
	if err := srv.Start(); err != nil {
		return fmt.Errorf("cannot listen on %s: %w", httpAddr, err)
	}
	// The HTTP server stops last, once every other part has: probes answer
	// to the end.
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	if opts.detect {
		detectCfg := detect.Config{TariffKZTPerKWh: rt.cfg.TariffKZTPerKWh}
		if opts.detectConfig != nil {
			opts.detectConfig(&detectCfg)
		}
		if err := detectCfg.Validate(); err != nil {
			return usageError{err}
		}
		ext := externalURL(rt, srv.Addr())
		if rt.cfg.AlertmanagerURL != "" {
			updates, unsubscribe := bc.Subscribe()
			defer unsubscribe()
			am, err := newAlertmanager(rt, ext, updates)
			if err != nil {
				return usageError{err}
			}
			parts = append(parts, part{"Alertmanager client", am.Run})
		}
		if rt.cfg.AlertWebhook != "" {
			wh := &notify.Webhook{URL: rt.cfg.AlertWebhook, ExternalURL: ext, Log: log}
			if err := wh.Validate(); err != nil {
				return usageError{err}
			}
			sink.Notify = func(ctx context.Context, a []schemas.Alert) { _ = wh.Notify(ctx, a) }
			parts = append(parts, part{"alert webhook", wh.Run})
		}
		det, err := newDetection(rt, reg, follower, sink, detectCfg)
		if err != nil {
			return err
		}
		parts = append(parts, part{"detection", det.Run})
		ready = append(ready, det)
	}

	parts = append(parts, part{"HTTP server", srv.Run})
	log.Info("serving", zap.String("http", srv.Addr()), zap.Strings("brokers", rt.brokers))
	if opts.ready != nil {
		opts.ready(srv.Addr())
	}
	err = runParts(ctx, parts)
	if err == nil {
		log.Info("stopped: flushed and committed")
	}
	for _, c := range consumers {
		st := c.Stats()
		log.Info("consumer done", zap.String("topic", st.Topic), zap.Int64("consumed", st.Consumed),
			zap.Int64("stored", st.Stored), zap.Int64("rejected", st.Rejected))
	}
	return err
}

// registryStart returns, per registry stream, the offsets its consumer
// group has committed: everything before them is stored.
func registryStart(ctx context.Context, rt *runtime) (map[schemas.Stream]ingest.Offsets, error) {
	out := map[schemas.Stream]ingest.Offsets{}
	for _, s := range []schemas.Stream{schemas.Licenses, schemas.Meters, schemas.Rigs} {
		ends, err := ingest.EndOffsets(ctx, rt.brokers, rt.dialer, s.Topic())
		if err != nil {
			return nil, fmt.Errorf("cannot read the partitions of %s: %w", s.Topic(), err)
		}
		parts := make([]int, 0, len(ends))
		for p := range ends {
			parts = append(parts, p)
		}
		committed, err := ingest.CommittedOffsets(ctx, rt.brokers, rt.dialer, rt.cfg.KafkaGroup+"."+string(s), s.Topic(), parts)
		if err != nil {
			return nil, fmt.Errorf("cannot read the committed offsets of %s: %w", s.Topic(), err)
		}
		out[s] = committed
	}
	return out, nil
}

// foldAlertStateEvery is how often every process copies people's alert
// state into the alerts rows that lack it (store.FoldAlertState).
const foldAlertStateEvery = 5 * time.Second

// foldAlertState keeps the alerts table's copy of people's state right for
// those who query the table directly. A failed round is logged and tried
// again: reads through rigwatch never depend on it.
func foldAlertState(rt *runtime) func(context.Context) error {
	return func(ctx context.Context) error {
		log := rt.log.With(zap.String("component", "alert state"))
		t := time.NewTicker(foldAlertStateEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			if n, err := rt.store.FoldAlertState(ctx); err != nil && ctx.Err() == nil {
				log.Warn("cannot fold people's alert state into the alerts table", zap.Error(err))
			} else if n > 0 {
				log.Debug("folded people's alert state into the alerts table", zap.Int("alerts", n))
			}
		}
	}
}

// detection runs the live detector in the elected process: a fresh engine
// each term (it re-derives open findings from stored data, under the same
// deterministic ids), and reports whether it keeps making progress.
type detection struct {
	rt       *runtime
	reg      *registry.Index
	follower *ingest.Follower
	sink     *notify.Sink
	cfg      detect.Config
	elector  *leader.Elector
	progress progress
}

func newDetection(rt *runtime, reg *registry.Index, f *ingest.Follower, sink *notify.Sink, cfg detect.Config) (*detection, error) {
	el, err := leader.New(leader.Config{Brokers: rt.brokers, Dialer: rt.dialer, GroupID: rt.cfg.KafkaGroup + ".detect", Task: "detection"}, rt.log)
	if err != nil {
		return nil, err
	}
	return &detection{rt: rt, reg: reg, follower: f, sink: sink, cfg: cfg, elector: el}, nil
}

// Run takes part in the election and detects while this process leads.
func (d *detection) Run(ctx context.Context) error { return d.elector.Run(ctx, d.lead) }

func (d *detection) lead(ctx context.Context) error {
	eng, err := detect.New(d.cfg, d.reg, d.rt.log)
	if err != nil {
		return fmt.Errorf("cannot start detection: %w", err)
	}
	// A fresh engine each term: it continues from the state the last
	// leader stored.
	d.progress.start()
	return detectLoop(ctx, d.rt, eng, d.sink, d.rt.cfg.DetectEvery, d.rt.cfg.DetectLateness, &d.progress, d.follower.Reached)
}

// Ready returns why detection counts as stopped in this process: it cannot
// take part in the election, or it leads and has failed, or made no
// progress, for longer than --detect-stall.
func (d *detection) Ready() error {
	if err := d.elector.Ready(); err != nil {
		return err
	}
	if !d.elector.Leading() {
		return nil
	}
	return d.progress.check(d.rt.cfg.DetectStall)
}
