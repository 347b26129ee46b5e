package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rigwatch/rigwatch/sim"
)

// errTargetsMissed makes score exit 1 when detection misses a target.
var errTargetsMissed = errors.New("detection misses its targets")

func newScoreCmd() *cobra.Command {
	var truthPath, alertsPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "score --truth DIR/truth.jsonl --alerts alerts.jsonl",
		Short: "Score alerts against a simulated scenario's ground truth (recall, precision, time to detect, energy error)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if truthPath == "" || alertsPath == "" {
				return usagef("--truth and --alerts are both required")
			}
			truth, err := sim.LoadTruth(truthPath)
			if err != nil {
				return usagef("cannot read truth: %v", err)
			}
			alerts, err := sim.LoadAlerts(alertsPath)
			if err != nil {
				return usagef("cannot read alerts: %v", err)
			}
			rep := sim.Score(truth, alerts, sim.ScoreOptions{})
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else if err := rep.Format(cmd.OutOrStdout()); err != nil {
				return err
			}
			if f := rep.Failures(); len(f) > 0 {
				return fmt.Errorf("%w: %s", errTargetsMissed, strings.Join(f, "; "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&truthPath, "truth", "", "ground truth (truth.jsonl written by simulate)")
	cmd.Flags().StringVar(&alertsPath, "alerts", "", "alerts as JSON Lines (replay --alerts-out)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
