package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rigwatch/rigwatch/api"
	"github.com/rigwatch/rigwatch/investigate"
	"github.com/rigwatch/rigwatch/schemas"
)

func newAlertsCmd(g *globalFlags) *cobra.Command {
	var out outFlags
	var kind, severity, oblast, status, entity, since, order string
	var limit, offset int
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List alerts: --kind, --severity, --oblast, --status, --entity, --since",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			// The same parser as the API's query parameters.
			q := url.Values{}
			for k, v := range map[string]string{"kind": kind, "severity": severity, "oblast": oblast, "status": status, "entity_id": entity, "since": since, "order": order} {
				if v != "" {
					q.Set(k, v)
				}
			}
			q.Set("limit", strconv.Itoa(limit))
			q.Set("offset", strconv.Itoa(offset))
			f, err := api.ParseAlertFilter(q, time.Now())
			if err != nil {
				return usageError{err}
			}
			ctx := cmd.Context()
			inv, err := openInvestigation(ctx, g, false)
			if err != nil {
				return err
			}
			defer inv.close()
			if since != "" {
				// A duration counts back from the newest data, as in the API.
				now, err := investigate.DataNow(ctx, inv.rt.store, time.Now())
				if err != nil {
					return err
				}
				if f, err = api.ParseAlertFilter(q, now); err != nil {
					return usageError{err}
				}
			}
			as, err := inv.rt.store.ListAlerts(ctx, f)
			params := map[string]any{}
			for k := range q {
				params[k] = q.Get(k)
			}
			inv.audit(ctx, "list alerts", params, err)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case out.json:
				if as == nil {
					as = []schemas.Alert{}
				}
				return writeJSON(w, as)
			case out.csv:
				return writeAlertsCSV(w, as)
			}
			printAlertTable(w, as)
			return nil
		},
	}
	out.register(cmd)
	cmd.Flags().StringVar(&kind, "kind", "", "alert kind")
	cmd.Flags().StringVar(&severity, "severity", "", "info, warning or critical")
	cmd.Flags().StringVar(&oblast, "oblast", "", "oblast")
	cmd.Flags().StringVar(&status, "status", "", "open, acknowledged or resolved")
	cmd.Flags().StringVar(&entity, "entity", "", "an entity, meter, feeder, site, operator, rig, licence or transaction id")
	cmd.Flags().StringVar(&since, "since", "", "window ends at or after: a duration back from the newest stored reading (7d) or an RFC 3339 time")
	cmd.Flags().StringVar(&order, "order", "", "sort: score, excess_kwh, window_end, created_at, updated_at, estimated_value_kzt; leading - for descending")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	cmd.Flags().IntVar(&offset, "offset", 0, "skip this many")
	return cmd
}

func optF(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

func writeAlertsCSV(w io.Writer, as []schemas.Alert) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"alert_id", "kind", "severity", "status", "entity_type", "entity_id", "oblast", "feeder_id", "meter_id", "site_id", "operator_id",
		"window_start", "window_end", "observed_kwh", "expected_kwh", "excess_kwh", "estimated_value_kzt", "score", "summary", "note"})
	for _, a := range as {
		_ = cw.Write([]string{a.AlertID, a.Kind, a.Severity, a.Status, a.EntityType, a.EntityID, a.Oblast, a.FeederID, a.MeterID, a.SiteID, a.OperatorID,
			a.WindowStart.Format(time.RFC3339), a.WindowEnd.Format(time.RFC3339), optF(a.ObservedKWh), optF(a.ExpectedKWh), optF(a.ExcessKWh), optF(a.EstimatedValueKZT),
			strconv.FormatFloat(a.Score, 'f', -1, 64), a.Summary, a.Note})
	}
	cw.Flush()
	return cw.Error()
}

func printAlertTable(w io.Writer, as []schemas.Alert) {
	if len(as) == 0 {
		fmt.Fprintln(w, "no alerts")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "alert\tkind\tseverity\tstatus\tentity\twindow end\texcess kWh\tsummary")
	for _, a := range as {
		ex := ""
		if a.ExcessKWh != nil {
			ex = f1(*a.ExcessKWh)
		}
		sum := a.Summary
		if len(sum) > 90 {
			sum = sum[:87] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\t%s\t%s\t%s\n", a.AlertID, a.Kind, a.Severity, a.Status, a.EntityType, a.EntityID, a.WindowEnd.Format("2006-01-02 15:04"), ex, sum)
	}
	tw.Flush()
}
