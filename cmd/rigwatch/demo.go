package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/detect"
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
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(demoMemoryLimit)
	}
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
	y, m, d := time.Now().UTC().Date()
	start := time.Date(y, m, d, 0, 0, 0, 0, schemas.Local).UTC() // local midnight of today's UTC date
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
		served <- serve(sctx, rt, httpAddr, serveOptions{detect: true, ready: func(a string) { ready <- a },
			detectConfig: demoDetectConfig(o.days)})
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

// demoDetectConfig sizes detection to the demo: its lookback spans the
// demo's whole event time (and no more), so every evaluation looks back
// over all the data there is, as with the default four weeks, without
// holding weeks of empty hours per meter.
func demoDetectConfig(days int) func(*detect.Config) {
	return func(c *detect.Config) {
		if lb := time.Duration(days+1) * 24 * time.Hour; lb < 28*24*time.Hour {
			c.Lookback = lb
		}
	}
}

// demoMemoryLimit is the Go runtime's soft memory limit for the demo (a
// laptop's share): the collector works harder near it instead of letting
// the heap double between collections. GOMEMLIMIT, when set, wins.
const demoMemoryLimit = 850 << 20

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

// cursor walks one of the scenario's record slices in event-time order,
// turning records into messages only when they fall due: nothing is copied
// or encoded ahead of time.
type cursor struct {
	stream schemas.Stream
	n      int
	order  []int32 // nil: the slice is in time order already
	at     func(i int) time.Time
	key    func(i int) string
	value  func(i int) any
	next   int
}

func newCursor[T any](stream schemas.Stream, recs []T, at func(*T) time.Time, key func(*T) string) *cursor {
	c := &cursor{stream: stream, n: len(recs),
		at:    func(i int) time.Time { return at(&recs[i]) },
		key:   func(i int) string { return key(&recs[i]) },
		value: func(i int) any { return &recs[i] }}
	if !slices.IsSortedFunc(recs, func(a, b T) int { return at(&a).Compare(at(&b)) }) {
		c.order = make([]int32, len(recs))
		for i := range c.order {
			c.order[i] = int32(i)
		}
		slices.SortStableFunc(c.order, func(a, b int32) int { return at(&recs[a]).Compare(at(&recs[b])) })
	}
	return c
}

func (c *cursor) index(k int) int {
	if c.order != nil {
		return int(c.order[k])
	}
	return k
}

// due appends to msgs the messages of the records due at or before t, at
// most max of them, and reports whether more are due.
func (c *cursor) due(t time.Time, msgs []kafka.Message, max int) ([]kafka.Message, bool, error) {
	for ; c.next < c.n; c.next++ {
		i := c.index(c.next)
		if c.at(i).After(t) {
			return msgs, false, nil
		}
		if len(msgs) >= max {
			return msgs, true, nil
		}
		v, err := json.Marshal(c.value(i))
		if err != nil {
			return msgs, false, err
		}
		msgs = append(msgs, kafka.Message{Key: []byte(c.key(i)), Value: v})
	}
	return msgs, false, nil
}

// sendChunk bounds the messages a registry or purchase send holds at once:
// the national registry falls due all at once at the start.
const sendChunk = 10_000

func (st *streamer) run(ctx context.Context) error {
	writers := map[schemas.Stream]*kafka.Writer{}
	for _, s := range schemas.Streams {
		writers[s] = ingest.NewWriter(st.rt.brokers, s.Topic(), st.rt.dialer)
		// Compressed as meter head-end systems send in bulk: the embedded
		// broker holds the batches as they came, a fifth of the bytes.
		writers[s].Compression = kafka.Lz4
		defer writers[s].Close()
	}
	// Registry first at equal times, so readings meet their meters: each
	// send goes through the streams in this order.
	cursors := []*cursor{
		newCursor(schemas.Licenses, st.s.Licenses(), func(l *schemas.License) time.Time { return l.UpdatedAt }, func(l *schemas.License) string { return l.LicenseID }),
		newCursor(schemas.Meters, st.s.Meters(), func(m *schemas.Meter) time.Time { return m.UpdatedAt }, func(m *schemas.Meter) string { return m.MeterID }),
		newCursor(schemas.Rigs, st.s.Rigs(), func(r *schemas.Rig) time.Time { return r.UpdatedAt }, func(r *schemas.Rig) string { return r.RigID }),
		newCursor(schemas.Purchases, st.s.Purchases(), func(p *schemas.Purchase) time.Time { return p.TS }, func(p *schemas.Purchase) string { return p.TxID }),
	}
	var buf []kafka.Message
	send := func(due time.Time) error {
		for _, c := range cursors {
			for more := true; more; {
				var err error
				if buf, more, err = c.due(due, buf[:0], sendChunk); err != nil {
					return err
				}
				if len(buf) == 0 {
					break
				}
				if err := writers[c.stream].WriteMessages(ctx, buf...); err != nil {
					return fmt.Errorf("cannot produce %d %s: %w", len(buf), c.stream, ingest.WriteError(err))
				}
			}
		}
		clear(buf) // drop the encoded values until the next send
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
