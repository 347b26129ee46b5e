package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/rigwatch/rigwatch/detect"
	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/notify"
	"github.com/rigwatch/rigwatch/schemas"
)

func newReplayCmd(g *globalFlags) *cobra.Command {
	var viaKafka, asJSON, noDetect bool
	var alertsOut string
	var memReadings int64
	cmd := &cobra.Command{
		Use:   "replay DIR",
		Short: "Load a directory of replay files through the same validation and storage path",
		Long: "Loads licenses, meters, rigs, purchases and readings files (.csv or .jsonl, optionally .gz;\n" +
			"readings may be split as readings-*.csv.gz) from DIR into ClickHouse. Bad rows are stored as\n" +
			"rejects with their file, line and reason. Replaying the same directory again changes no count.",
		Args: exactArgs(1, "one directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return usagef("replay directory %q does not exist or is not a directory", dir)
			}
			files, err := ingest.FindFiles(dir)
			if err != nil {
				return usageError{err}
			}
			rt, err := openRuntime(cmd.Context(), g, viaKafka)
			if err != nil {
				return err
			}
			defer rt.close()
			ctx := cmd.Context()
			// Detection reads the replayed readings from memory when the
			// store held none before and they fit memReadings.
			var mem *replayed
			if !viaKafka && !noDetect && memReadings > 0 {
				has, err := rt.store.HasReadings(ctx)
				if err != nil {
					return err
				}
				if !has {
					mem = newReplayed(memReadings)
				}
			}
			var sum ingest.ReplaySummary
			if viaKafka {
				sum, err = replayViaKafka(ctx, rt, files)
			} else {
				sum, err = replayFiles(ctx, rt, dir, mem)
			}
			if err != nil {
				return err
			}
			if noDetect {
				return printSummary(cmd.OutOrStdout(), sum, asJSON)
			}
			var src detect.Series = storeSeries{rt.store}
			if mem != nil {
				ms, err := mem.series(ctx, rt)
				if err != nil {
					return err
				}
				if ms != nil {
					src = memSeries{ms, storeSeries{rt.store}}
				}
				rt.log.Debug("detection source", zap.Bool("in_memory", ms != nil))
			}
			det, err := detectReplayed(ctx, rt, sum, alertsOut, src)
			if err != nil {
				return err
			}
			sum.Detection = &det
			return printSummary(cmd.OutOrStdout(), sum, asJSON)
		},
	}
	cmd.Flags().StringVar(&alertsOut, "alerts-out", "", "also write the alerts as JSON Lines to FILE")
	cmd.Flags().BoolVar(&noDetect, "no-detect", false, "load only; do not run detection over the replayed period")
	cmd.Flags().BoolVar(&viaKafka, "via-kafka", false, "produce the files into the topics and let the consumers load them")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	cmd.Flags().Int64Var(&memReadings, "detect-in-memory", 50_000_000,
		"detection keeps up to this many replayed readings in memory (about 55 bytes each) instead of reading them back from ClickHouse; 0: always read back")
	return cmd
}

// replayFiles replays dir; mem, if not nil, is shown every batch stored.
func replayFiles(ctx context.Context, rt *runtime, dir string, mem *replayed) (ingest.ReplaySummary, error) {
	cfg := ingest.ReplayConfig{Dir: dir, BatchSize: rt.cfg.BatchSize, MaxLine: rt.cfg.MaxMessageBytes,
		NewInserter: func() ingest.Inserter { return rt.store.Inserter() }}
	if mem != nil {
		cfg.Tap = mem.tap
	}
	var bar *progressbar.ProgressBar
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("replay"),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionClearOnFinish(),
		)
		start := time.Now()
		cfg.Progress = func(done, total, rows int64) {
			if bar.GetMax64() != total {
				bar.ChangeMax64(total)
			}
			rate := float64(rows) / time.Since(start).Seconds()
			bar.Describe(fmt.Sprintf("replay %d rows, %.0f rows/s", rows, rate))
			_ = bar.Set64(done)
		}
	}
	sum, err := ingest.Replay(ctx, cfg, rt.store, nil, rt.log)
	if bar != nil {
		_ = bar.Finish()
	}
	return sum, err
}

// replayViaKafka produces the files to the topics, runs the consumers until
// every group has committed everything produced, and reports what the
// consumers stored.
func replayViaKafka(ctx context.Context, rt *runtime, files []ingest.File) (ingest.ReplaySummary, error) {
	start := time.Now()
	var sum ingest.ReplaySummary
	n, err := ingest.ProduceFiles(ctx, files, rt.brokers, rt.dialer, rt.cfg.MaxMessageBytes)
	if err != nil {
		return sum, err
	}
	rt.log.Info("produced replay files", zap.Int64("messages", n))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(cctx, rt, "127.0.0.1:0", serveOptions{}) }()
	for {
		lag := int64(0)
		for _, s := range schemas.Streams {
			l, err := ingest.GroupLag(ctx, rt.brokers, rt.dialer, rt.cfg.KafkaGroup+"."+string(s), s.Topic())
			if err != nil {
				l = 1 // group not formed yet
			}
			lag += l
		}
		if lag == 0 {
			break
		}
		select {
		case <-ctx.Done():
			cancel()
			<-done
			return sum, ctx.Err()
		case err := <-done:
			return sum, fmt.Errorf("consumers stopped early: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		return sum, err
	}
	sum.Seconds = time.Since(start).Seconds()
	counts, err := rt.store.TableCounts(ctx)
	if err != nil {
		return sum, err
	}
	for _, s := range schemas.Streams {
		sum.Streams = append(sum.Streams, ingest.StreamSummary{Stream: s, Accepted: int64(counts[string(s)])})
	}
	rej, err := rt.store.RejectReasons(ctx)
	if err == nil {
		for i := range sum.Streams {
			sum.Streams[i].Reasons = map[string]int64{}
			for k, v := range rej {
				st, field, _ := strings.Cut(k, "/")
				if st == string(sum.Streams[i].Stream) {
					sum.Streams[i].Rejected += int64(v)
					sum.Streams[i].Reasons[field] += int64(v)
				}
			}
		}
	}
	return sum, nil
}

// detectReplayed runs the detector over the replayed period of src and
// writes the alerts to the table, the topic (with a broker) and alertsOut.
func detectReplayed(ctx context.Context, rt *runtime, sum ingest.ReplaySummary, alertsOut string, src detect.Series) (ingest.DetectionSummary, error) {
	var det ingest.DetectionSummary
	from, to := sum.From, sum.To
	if from.IsZero() {
		var err error
		if from, to, err = rt.store.ReadingSpan(ctx); err != nil {
			return det, err
		}
	}
	start := time.Now()
	eng, reg, err := newEngine(ctx, rt)
	if err != nil {
		return det, err
	}
	sink := &notify.Sink{Store: rt.store, Topic: alertsTopic(rt), Log: rt.log}
	if sink.Topic != nil {
		defer sink.Topic.Close()
	}
	if !to.IsZero() {
		if err := evaluate(ctx, eng, src, rt.store, sink, hourBefore(from.Add(-time.Second)), to); err != nil {
			return det, err
		}
		det.From, det.To = from, to
	} else {
		// No readings at all, so no meter rule has anything to judge. The
		// registry rules still do: check the registry as it stood at its
		// newest record (the data's time, not the wall clock's).
		det.NoReadings = true
		at, err := rt.store.RegistryLatest(ctx)
		if err != nil {
			return det, err
		}
		if !at.IsZero() {
			det.RegistryAt = &at
			if err := sink.Emit(ctx, reg.Check(at)); err != nil {
				return det, err
			}
		}
	}
	det.ByKind = map[string]int{}
	for _, a := range sink.Final() {
		det.ByKind[a.Kind]++
		det.Alerts++
	}
	if alertsOut != "" {
		if _, err := sink.WriteFile(alertsOut); err != nil {
			return det, err
		}
		det.File = alertsOut
	}
	det.Seconds = time.Since(start).Seconds()
	return det, nil
}

func printSummary(w io.Writer, sum ingest.ReplaySummary, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stream\tfiles\taccepted\trejected\trows/s\t")
	var acc, rej int64
	for _, s := range sum.Streams {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t\n", s.Stream, s.Files, s.Accepted, s.Rejected, s.RowsPerS)
		acc += s.Accepted
		rej += s.Rejected
	}
	tw.Flush()
	for _, s := range sum.Streams {
		if len(s.Reasons) == 0 {
			continue
		}
		keys := s.SortedReasons()
		sort.SliceStable(keys, func(i, j int) bool { return s.Reasons[keys[i]] > s.Reasons[keys[j]] })
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s: %d", k, s.Reasons[k])
		}
		fmt.Fprintf(w, "rejected %s by reason: %s\n", s.Stream, strings.Join(parts, ", "))
	}
	rate := 0.0
	if sum.Seconds > 0 {
		rate = float64(acc+rej) / sum.Seconds
	}
	fmt.Fprintf(w, "total: %d accepted, %d rejected in %.1fs (%.0f rows/s)\n", acc, rej, sum.Seconds, rate)
	if d := sum.Detection; d != nil {
		kinds := make([]string, 0, len(d.ByKind))
		for k, n := range d.ByKind {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(kinds)
		switch {
		case !d.NoReadings:
			fmt.Fprintf(w, "detection over %s .. %s: %d alerts (%s) in %.1fs\n", d.From.Format(time.RFC3339), d.To.Format(time.RFC3339),
				d.Alerts, strings.Join(kinds, ", "), d.Seconds)
		case d.RegistryAt != nil:
			fmt.Fprintf(w, "no readings stored, so no meter rule ran; registry checks as of its newest record (%s): %d alerts (%s)\n",
				d.RegistryAt.Format(time.RFC3339), d.Alerts, strings.Join(kinds, ", "))
		default:
			fmt.Fprintln(w, "no readings and no registry records stored: no rule ran")
		}
		if d.File != "" {
			fmt.Fprintf(w, "alerts written to %s\n", d.File)
		}
	}
	return nil
}
