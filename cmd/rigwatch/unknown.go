package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/spf13/cobra"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// unknownMeterReadings counts stored readings whose meter the live registry
// did not know at the reading's time. Such a reading is good input: it is
// stored, and the meter shows up in `registry unknown-meters`.
var unknownMeterReadings = promauto.NewCounter(prometheus.CounterOpts{
	Name: "rigwatch_ingest_unknown_meter_readings_total",
	Help: "Stored readings from a meter the registry did not know at the reading's time.",
})

// unknownCounter counts the readings whose meter was not in the registry
// at the reading's time; (*registry.Index).UnknownReadings fits it.
type unknownCounter func(rs []schemas.Reading) int

// countUnknownMeters returns a batch hook that calls next (if any) and then
// counts the batch's readings from meters unknown to the registry. Ingest
// stays unaware of the registry: serve composes the two here.
func countUnknownMeters(unknown unknownCounter, next ingest.BatchHook) ingest.BatchHook {
	return func(b *schemas.Batch) {
		if next != nil {
			next(b)
		}
		if n := unknown(b.Readings); n > 0 {
			unknownMeterReadings.Add(float64(n))
		}
	}
}

func newRegistryUnknownMetersCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "unknown-meters",
		Short: "Meters that send readings but have no meter record: readings, energy, first and last reading",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return usagef("--limit must be >= 0")
			}
			rt, err := openRuntime(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			defer rt.close()
			ms, err := rt.store.UnknownMeters(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				if ms == nil {
					ms = []store.UnknownMeter{}
				}
				return writeJSON(cmd.OutOrStdout(), ms)
			}
			printUnknownMeters(cmd.OutOrStdout(), ms)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&limit, "limit", 100, "list at most this many meters, most readings first (0: all)")
	return cmd
}

func printUnknownMeters(w io.Writer, ms []store.UnknownMeter) {
	if len(ms) == 0 {
		fmt.Fprintln(w, "every meter with readings is in the registry")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "meter_id\treadings\tkWh\tfirst\tlast")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", m.MeterID, m.Readings, num(m.KWh, 3),
			m.FirstTS.Format(time.RFC3339), m.LastTS.Format(time.RFC3339))
	}
	tw.Flush()
}
