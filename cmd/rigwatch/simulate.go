package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
)

func newSimulateCmd() *cobra.Command {
	var (
		out       string
		cfg       sim.Config
		incidents string
		start     string
	)
	cmd := &cobra.Command{
		Use:   "simulate --out DIR",
		Short: "Write a realistic grid scenario as replay files, with its ground truth",
		Long: "Writes licenses.csv, meters.csv, rigs.csv, purchases.csv and readings-NNNN.csv.gz (one a day)\n" +
			"in the contract's format, plus truth.jsonl (the incidents) and scenario.json.\n" +
			"Residential meters follow real household load profiles.",
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("--out DIR is required")
			}
			switch incidents {
			case "", "all":
				cfg.Incidents = nil
			case "none":
				cfg.Incidents = []string{}
			default:
				for _, k := range strings.Split(incidents, ",") {
					k = strings.TrimSpace(k)
					known := false
					for _, a := range schemas.AlertKinds {
						known = known || a == k
					}
					if !known {
						return usagef("--incidents: unknown alert kind %q (want all, none or a list of %s)", k, strings.Join(schemas.AlertKinds, ", "))
					}
					cfg.Incidents = append(cfg.Incidents, k)
				}
			}
			if start != "" {
				t, err := time.Parse(time.RFC3339, start)
				if err != nil {
					return usagef("--start %q is not an RFC 3339 time", start)
				}
				cfg.Start = t
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			began := time.Now()
			s, err := sim.New(cfg)
			if err != nil {
				return err
			}
			sum, err := sim.WriteDir(cmd.Context(), s, out, sim.WriteOptions{})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %s in %.1fs: %d feeders, %d meters, %d sites, %d operators, %d rig records, %d purchases, %d readings\n",
				out, time.Since(began).Seconds(), sum.Feeders, sum.Meters, sum.Sites, sum.Operators, sum.Rigs, sum.Purchases, sum.Readings)
			fmt.Fprintf(w, "event time %s .. %s, %d incidents %v (ground truth in truth.jsonl)\n",
				sum.Start.UTC().Format(time.RFC3339), sum.End.UTC().Format(time.RFC3339), sum.Incidents, sum.ByKind)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "directory to write (created if missing)")
	f.Int64Var(&cfg.Seed, "seed", 1, "random seed: the same seed writes the same files")
	f.IntVar(&cfg.Feeders, "feeders", sim.DefaultFeeders, "distribution feeders")
	f.IntVar(&cfg.MetersPerFeeder, "meters-per-feeder", sim.DefaultMetersPerFeeder, "meters per feeder on average")
	f.IntVar(&cfg.Days, "days", sim.DefaultDays, "days of readings")
	f.IntVar(&cfg.IntervalS, "interval", schemas.DefaultIntervalS, "metering interval in seconds (300, 600, 900 or 1800)")
	f.IntVar(&cfg.Rigs, "rigs", 0, "registered rigs in all (0: 125 per feeder)")
	f.IntVar(&cfg.Operators, "operators", 0, "licensed operators (0: scaled to the grid)")
	f.StringVar(&incidents, "incidents", "all", "alert kinds to stage: all, none, or a comma-separated list")
	f.StringVar(&start, "start", "", "first interval start, RFC 3339 (default 2025-10-01T00:00:00+05:00)")
	return cmd
}
