package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/api"
	"github.com/rigwatch/rigwatch/detect"
	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/notify"
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
}

// serve runs the consumers, live detection and the HTTP server until ctx
// ends, then shuts down in order: stop fetching, flush, commit (the
// consumers' Run), then stop HTTP.
func serve(ctx context.Context, rt *runtime, httpAddr string, opts serveOptions) error {
	log := rt.log
	reg, err := rt.loadRegistry(ctx)
	if err != nil {
		return err
	}
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
		}, rt.store, rejects, markLate(rt.store, log, countUnknownMeters(reg.MeterAt, reg.Hook())), log)
		if err != nil {
			return err
		}
		consumers = append(consumers, c)
	}
	srv := api.New(api.Config{Addr: httpAddr, Ready: func(ctx context.Context) error {
		if err := rt.store.Ping(ctx); err != nil {
			return fmt.Errorf("ClickHouse: %w", err)
		}
		for _, c := range consumers {
			if !c.Ready() {
				return errors.New("a consumer cannot store its batch")
			}
		}
		return nil
	}}, log)
	bc := api.NewBroadcaster(0)
	if err := api.Mount(srv, api.Deps{Store: rt.store, Registry: reg, Broadcaster: bc,
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
	log.Info("serving", zap.String("http", srv.Addr()), zap.Strings("brokers", rt.brokers))
	if opts.ready != nil {
		opts.ready(srv.Addr())
	}
	detectCfg := detect.Config{TariffKZTPerKWh: rt.cfg.TariffKZTPerKWh}
	if err := detectCfg.Validate(); err != nil {
		return usageError{err}
	}
	var wg sync.WaitGroup
	if opts.detect {
		sink := &alertSink{st: rt.store, topic: alertsTopic(rt), publish: bc.Publish, log: log}
		defer sink.topic.Close()
		if rt.cfg.AlertmanagerURL != "" {
			updates, unsubscribe := bc.Subscribe()
			defer unsubscribe()
			am, err := newAlertmanager(rt, externalURL(rt, srv.Addr()), updates)
			if err != nil {
				return usageError{err}
			}
			wg.Add(1)
			go func() { defer wg.Done(); _ = am.Run(ctx) }()
		}
		if rt.cfg.AlertWebhook != "" {
			wh := &notify.Webhook{URL: rt.cfg.AlertWebhook, ExternalURL: externalURL(rt, srv.Addr()), Log: log}
			if err := wh.Validate(); err != nil {
				return usageError{err}
			}
			sink.notify = func(ctx context.Context, a []schemas.Alert) { _ = wh.Notify(ctx, a) }
			wg.Add(1)
			go func() { defer wg.Done(); _ = wh.Run(ctx) }()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := asLeader(ctx, rt, func(lctx context.Context) {
				// A fresh engine each term: it continues from the state
				// the last leader stored.
				eng, err := detect.New(detectCfg, reg, log)
				if err != nil {
					log.Error("cannot start detection", zap.Error(err))
					return
				}
				if err := detectLoop(lctx, rt, eng, sink, rt.cfg.DetectEvery, rt.cfg.DetectLateness); err != nil {
					log.Error("detection stopped", zap.Error(err))
				}
			})
			if err != nil {
				log.Error("detection stopped", zap.Error(err))
			}
		}()
	}
	for _, c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				log.Error("consumer stopped", zap.Error(err))
			}
		}()
	}
	<-ctx.Done()
	log.Info("stopping: flushing and committing")
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	for _, c := range consumers {
		st := c.Stats()
		log.Info("consumer done", zap.String("topic", st.Topic), zap.Int64("consumed", st.Consumed),
			zap.Int64("stored", st.Stored), zap.Int64("rejected", st.Rejected))
	}
	return nil
}
