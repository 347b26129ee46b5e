package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
	"github.com/rigwatch/rigwatch/store"
)

// demoOptions size and pace the live demo.
type demoOptions struct {
	feeders, days, rigs, operators int
	seed                           int64
	speed                          float64 // event seconds per wall second
	http                           string
}

func newDemoCmd(g *globalFlags) *cobra.Command {
	o := demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Live demo on the embedded default: a simulated national grid streamed through Kafka, ingest, ClickHouse and detection, with the web UI",
		Long: "Starts a private ClickHouse and the embedded Kafka broker, registers a national fleet (415,000 rigs of\n" +
			"84 operators by default), then streams a simulated grid's meter readings and marketplace purchases at\n" +
			"accelerated event time through the real ingest and detection path. Theft incidents start during the\n" +
			"run. Prints the web UI's address with a login token. Ctrl-C stops everything.",
		Args:        exactArgs(0, "no arguments"),
		Annotations: map[string]string{logLevelAnnotation: "info"},
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := httpAddrOf(cmd, o.http)
			if err != nil {
				return err
			}
			if o.feeders <= 0 || o.days <= 0 || o.speed <= 0 || o.rigs < 0 {
				return usagef("--feeders, --days and --speed must be > 0")
			}
			if !cmd.Flags().Changed("clickhouse-database") && os.Getenv("RIGWATCH_CLICKHOUSE_DATABASE") == "" {
				_ = cmd.Flags().Set("clickhouse-database", "rigwatch_demo")
			}
			return runDemo(cmd.Context(), g, o, addr)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.feeders, "feeders", 1000, "distribution feeders streamed (about 50 meters each)")
	f.IntVar(&o.days, "days", 14, "days of event time to stream")
	f.IntVar(&o.rigs, "rigs", 415000, "registered rigs nationally")
	f.IntVar(&o.operators, "operators", 84, "licensed operators")
	f.Int64Var(&o.seed, "seed", 1, "scenario seed")
	f.Float64Var(&o.speed, "speed", 900, "event-time seconds per wall second (900: one 15-minute interval a second)")
	f.StringVar(&o.http, "http", "127.0.0.1:8080", "HTTP listen address (env RIGWATCH_HTTP_ADDR)")
	return cmd
}

func runDemo(ctx context.Context, g *globalFlags, o demoOptions, httpAddr string) error {
	began := time.Now()
	cfg, err := g.resolve()
	if err != nil {
		return err
	}
	// A fresh broker and database each run: the demo replays the same story.
	if cfg.Kafka == "" {
		if err := os.RemoveAll(filepath.Join(cfg.DataDir, "kafka")); err != nil {
			return err
		}
	}
	rt, err := openRuntime(ctx, g, true)
	if err != nil {
		return err
	}
	defer rt.close()
	if err := rt.store.DropDatabase(ctx); err != nil {
		return err
	}
	if err := rt.store.Migrate(ctx); err != nil {
		return err
	}
	if rt.cfg.APIAdminToken == "" {
		if rt.cfg.APIAdminToken, err = store.NewTokenSecret(); err != nil {
			return err
		}
	}
	start := time.Now().UTC().Truncate(24 * time.Hour).Add(-5 * time.Hour) // local (UTC+5) midnight
	fmt.Fprintf(os.Stderr, "rigwatch demo: simulating %d feeders, %d rigs of %d operators, %d days from %s ...\n",
		o.feeders, o.rigs, o.operators, o.days, start.Format(time.RFC3339))
	s, err := sim.New(sim.Config{Seed: o.seed, Feeders: o.feeders, Days: o.days, Rigs: o.rigs, Operators: o.operators, Start: start})
	if err != nil {
		return err
	}
	ready := make(chan string, 1)
	served := make(chan error, 1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		served <- serve(sctx, rt, httpAddr, serveOptions{detect: true, ready: func(a string) { ready <- a }})
	}()
	select {
	case a := <-ready:
		fmt.Fprintf(os.Stderr, "\n  web UI:  http://%s/#token=%s\n  API:     http://%s/api/v1/ (Authorization: Bearer %s)\n  ClickHouse %s, Kafka %v; Ctrl-C stops\n\n",
			a, rt.cfg.APIAdminToken, a, rt.cfg.APIAdminToken, clickhouseAddr(rt), rt.brokers)
	case err := <-served:
		return err
	}
	st := &streamer{rt: rt, s: s, speed: o.speed, log: rt.log.With(zap.String("component", "demo"))}
	streamErr := make(chan error, 1)
	go func() { streamErr <- st.run(sctx) }()
	go reportFirstAlert(sctx, rt.store, began)
	select {
	case err := <-streamErr:
		if err != nil && sctx.Err() == nil {
			stop()
			<-served
			return err
		}
		if err == nil {
			fmt.Fprintln(os.Stderr, "rigwatch demo: the scenario has been streamed in full; still serving until Ctrl-C")
		}
		return <-served
	case err := <-served:
		return err
	}
}

// reportFirstAlert prints how long the first alert took to appear.
func reportFirstAlert(ctx context.Context, st *store.Store, began time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if n, err := st.CountAlerts(ctx); err == nil && n > 0 {
			fmt.Fprintf(os.Stderr, "rigwatch demo: first alert %.0fs after start\n", time.Since(began).Seconds())
			return
		}
	}
}

func clickhouseAddr(rt *runtime) string {
	if rt.ch != nil {
		return rt.ch.Addr + " (private server under " + rt.ch.Dir + ")"
	}
	return rt.cfg.ClickHouse
}

// streamer produces a scenario into the input topics as if it were
// happening now, at speed times real time: registry records and purchases
// when event time reaches them, each interval's readings when it ends.
type streamer struct {
	rt    *runtime
	s     *sim.Scenario
	speed float64
	log   *zap.Logger
}

type timed struct {
	at     time.Time
	stream schemas.Stream
	key    string
	value  any
}

func (st *streamer) run(ctx context.Context) error {
	writers := map[schemas.Stream]*kafka.Writer{}
	for _, s := range schemas.Streams {
		writers[s] = ingest.NewWriter(st.rt.brokers, s.Topic(), st.rt.dialer)
		defer writers[s].Close()
	}
	var queue []timed
	for _, l := range st.s.Licenses() {
		queue = append(queue, timed{l.UpdatedAt, schemas.Licenses, l.LicenseID, l})
	}
	for _, m := range st.s.Meters() {
		queue = append(queue, timed{m.UpdatedAt, schemas.Meters, m.MeterID, m})
	}
	for _, r := range st.s.Rigs() {
		queue = append(queue, timed{r.UpdatedAt, schemas.Rigs, r.RigID, r})
	}
	for _, p := range st.s.Purchases() {
		queue = append(queue, timed{p.TS, schemas.Purchases, p.TxID, p})
	}
	// Registry first at equal times, so readings meet their meters.
	sort.SliceStable(queue, func(i, j int) bool { return queue[i].at.Before(queue[j].at) })
	send := func(due time.Time) error {
		batch := map[schemas.Stream][]kafka.Message{}
		for len(queue) > 0 && !queue[0].at.After(due) {
			q := queue[0]
			queue = queue[1:]
			v, err := json.Marshal(q.value)
			if err != nil {
				return err
			}
			batch[q.stream] = append(batch[q.stream], kafka.Message{Key: []byte(q.key), Value: v})
		}
		for _, s := range schemas.Streams {
			if msgs := batch[s]; len(msgs) > 0 {
				if err := writers[s].WriteMessages(ctx, msgs...); err != nil {
					return fmt.Errorf("cannot produce %d %s: %w", len(msgs), s, ingest.WriteError(err))
				}
			}
		}
		return nil
	}
	interval := st.s.Interval()
	if err := send(st.s.Start()); err != nil {
		return err
	}
	wallStart := time.Now()
	var readings []schemas.Reading
	msgs := make([]kafka.Message, 0, 1<<16)
	for step := 0; step < st.s.Steps(); step++ {
		end := st.s.Start().Add(time.Duration(step+1) * interval)
		if err := send(end); err != nil {
			return err
		}
		readings = st.s.ReadingsAt(step, readings[:0])
		msgs = msgs[:0]
		for i := range readings {
			v, err := json.Marshal(&readings[i])
			if err != nil {
				return err
			}
			msgs = append(msgs, kafka.Message{Key: []byte(readings[i].MeterID), Value: v})
		}
		if err := writers[schemas.Readings].WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("cannot produce readings: %w", ingest.WriteError(err))
		}
		if step%96 == 95 {
			st.log.Info("streamed a day of event time", zap.Time("event_time", end), zap.Int("readings_per_interval", len(readings)))
		}
		wait := time.Until(wallStart.Add(time.Duration(float64((step+1)*int(interval)) / st.speed)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return send(st.s.End())
}
