package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/api"
	"github.com/rigwatch/rigwatch/investigate"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// outFlags are the investigator commands' output formats: a table by
// default, --json or --csv.
type outFlags struct{ json, csv bool }

func (o *outFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
	cmd.Flags().BoolVar(&o.csv, "csv", false, "print CSV")
}

func (o *outFlags) check() error {
	if o.json && o.csv {
		return usagef("--json and --csv exclude each other")
	}
	return nil
}

// investigation is what the investigator commands run on: storage, the
// registry loaded from it (when needed) and the shared queries.
type investigation struct {
	rt  *runtime
	q   *investigate.Queries
	who string
}

func openInvestigation(ctx context.Context, g *globalFlags, withRegistry bool) (*investigation, error) {
	rt, err := openRuntime(ctx, g, false)
	if err != nil {
		return nil, err
	}
	inv := &investigation{rt: rt, q: &investigate.Queries{Store: rt.store, TariffKZTPerKWh: rt.cfg.TariffKZTPerKWh,
		Location: schemas.Local, Version: rigwatchVersion()}, who: cliUser()}
	if withRegistry {
		ix, err := registry.New(registry.Config{}, rt.log)
		if err != nil {
			rt.close()
			return nil, err
		}
		if err := rt.store.LoadRegistry(ctx, ix); err != nil {
			if !errors.Is(err, registry.ErrInvalidInput) {
				rt.close()
				return nil, err
			}
			rt.log.Warn("registry loaded with records skipped", zap.Error(err))
		}
		inv.q.Registry = ix
	}
	return inv, nil
}

func (inv *investigation) close() { inv.rt.close() }

// audit records a CLI query in the audit trail, as the API does for its
// callers: the CLI reads ClickHouse directly, so it is an admin-level user.
func (inv *investigation) audit(ctx context.Context, action string, params map[string]any, failed error) {
	b, _ := json.Marshal(params)
	status := 0
	if failed != nil {
		status = 1
	}
	if err := inv.rt.store.WriteAudit(ctx, store.AuditEntry{TS: time.Now(), Who: inv.who, Role: "cli", Action: action, Params: string(b), RemoteAddr: "local", Status: status}); err != nil {
		inv.rt.log.Warn("cannot write audit row", zap.Error(err))
	}
}

func cliUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli:" + strconv.Itoa(os.Getuid())
}

// cliWindow turns --since and --until into a window as the API's pages do:
// by default it ends at the newest stored reading, wherever that lies
// against the wall clock.
func cliWindow(ctx context.Context, st *store.Store, since, until string, def time.Duration) (time.Time, time.Time, error) {
	from, to, err := api.Window(ctx, st, since, until, def, time.Now())
	if api.IsBadParam(err) {
		return from, to, usageError{err}
	}
	return from, to, err
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func newFeedersCmd(g *globalFlags) *cobra.Command {
	var out outFlags
	var top int
	var since, until, oblast string
	cmd := &cobra.Command{
		Use:   "feeders",
		Short: "Rank feeders by estimated unaccounted energy (feeder head minus its meters)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if top < 1 || top > 10000 {
				return usagef("--top %d: want 1..10000", top)
			}
			ctx := cmd.Context()
			inv, err := openInvestigation(ctx, g, true)
			if err != nil {
				return err
			}
			defer inv.close()
			from, to, err := cliWindow(ctx, inv.rt.store, since, until, 30*24*time.Hour)
			if err != nil {
				return err
			}
			rank, err := inv.q.FeederRanking(ctx, from, to, top, oblast)
			inv.audit(ctx, "rank feeders", map[string]any{"top": top, "since": since, "until": until, "oblast": oblast}, err)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case out.json:
				return writeJSON(w, rank)
			case out.csv:
				cw := csv.NewWriter(w)
				_ = cw.Write([]string{"rank", "feeder_id", "oblast", "class", "meters", "meters_reporting", "head_kwh", "meters_kwh", "unaccounted_kwh", "unaccounted_pct", "normal_loss_kwh", "loss_model", "beyond_loss_kwh", "estimated_value_kzt"})
				for _, r := range rank.Top {
					_ = cw.Write([]string{strconv.Itoa(r.Rank), r.FeederID, r.Oblast, r.Class, strconv.Itoa(r.Meters), strconv.Itoa(r.Reporting),
						f3(r.HeadKWh), f3(r.MetersKWh), f3(r.UnaccountedKWh), f3(r.UnaccountedPct), f3(r.NormalLossKWh), modelSource(r.LossModel), f3(r.BeyondLossKWh), f3(r.ValueKZT)})
				}
				cw.Flush()
				return cw.Error()
			}
			fmt.Fprintf(w, "feeders by energy beyond normal technical losses, %s to %s (%d feeders with head data, %d without)\n", rank.From.Format(time.RFC3339), rank.To.Format(time.RFC3339), rank.Feeders, rank.WithoutHead)
			fmt.Fprintf(w, "unaccounted = head - meters; normal losses by each feeder's loss model; only energy beyond them is valued\n\n")
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "#\tfeeder\toblast\tmeters\thead kWh\tmeters kWh\tunaccounted kWh\t%\tnormal loss kWh\tmodel\tbeyond kWh\tKZT\t")
			for _, r := range rank.Top {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Rank, r.FeederID, r.Oblast, r.Reporting, r.Meters, f1(r.HeadKWh), f1(r.MetersKWh),
					f1(r.UnaccountedKWh), f1(r.UnaccountedPct), f1(r.NormalLossKWh), modelSource(r.LossModel), f1(r.BeyondLossKWh), f1(r.ValueKZT))
			}
			return tw.Flush()
		},
	}
	out.register(cmd)
	cmd.Flags().IntVar(&top, "top", 20, "how many feeders")
	cmd.Flags().StringVar(&since, "since", "30d", "window start: a duration back (30d, 12h) or an RFC 3339 time")
	cmd.Flags().StringVar(&until, "until", "", "window end, RFC 3339 (default: the newest stored reading)")
	cmd.Flags().StringVar(&oblast, "oblast", "", "only this oblast's feeders")
	return cmd
}

func f3(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func newFeederCmd(g *globalFlags) *cobra.Command {
	var out outFlags
	var since, until, alertID string
	cmd := &cobra.Command{
		Use:   "feeder FEEDER_ID",
		Short: "A feeder's hourly balance (head, meters, residual), its meters and alerts",
		Args:  exactArgs(1, "a feeder id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			id, err := api.ParseID("feeder", args[0])
			if err != nil {
				return usageError{err}
			}
			ctx := cmd.Context()
			inv, err := openInvestigation(ctx, g, true)
			if err != nil {
				return err
			}
			defer inv.close()
			var from, to time.Time
			if alertID != "" {
				if cmd.Flags().Changed("since") || until != "" {
					return usagef("--alert takes the alert's window: give it without --since and --until")
				}
				a, err := inv.rt.store.GetAlert(ctx, alertID)
				if err != nil {
					return fmt.Errorf("alert %s: %w", alertID, err)
				}
				from, to = investigate.AlertWindow(a)
			} else if from, to, err = cliWindow(ctx, inv.rt.store, since, until, 7*24*time.Hour); err != nil {
				return err
			}
			d, err := inv.q.Feeder(ctx, id, from, to)
			inv.audit(ctx, "read feeder", map[string]any{"id": id, "since": since, "until": until, "alert": alertID}, err)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("feeder %s has no meters in the registry", id)
			}
			if err != nil {
				return err
			}
			return printFeeder(cmd.OutOrStdout(), d, out)
		},
	}
	out.register(cmd)
	cmd.Flags().StringVar(&since, "since", "7d", "window start: a duration back (7d, 12h) or an RFC 3339 time")
	cmd.Flags().StringVar(&until, "until", "", "window end, RFC 3339 (default: the newest stored reading)")
	cmd.Flags().StringVar(&alertID, "alert", "", "show this alert's window, with a day before it")
	return cmd
}

func printFeeder(w io.Writer, d investigate.FeederDetail, out outFlags) error {
	switch {
	case out.json:
		return writeJSON(w, d)
	case out.csv:
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"hour", "head_kwh", "meters_kwh", "residual_kwh", "loss_band_kwh", "beyond_kwh"})
		for _, h := range d.Hourly {
			_ = cw.Write([]string{h.Hour.Format(time.RFC3339), f3(h.HeadKWh), f3(h.MetersKWh), f3(h.ResidualKWh), f3(h.LossBandKWh), f3(h.BeyondKWh)})
		}
		cw.Flush()
		return cw.Error()
	}
	fmt.Fprintf(w, "feeder %s (%s), %s to %s\n", d.FeederID, d.Oblast, d.From.Format(time.RFC3339), d.To.Format(time.RFC3339))
	fmt.Fprintf(w, "head %s kWh, meters %s kWh, unaccounted (head - meters) %s kWh (%s%%)\n", f1(d.HeadKWh), f1(d.MetersKWh), f1(d.UnaccountedKWh), f1(d.UnaccountedPct))
	fmt.Fprintf(w, "normal technical losses %s kWh (%s), beyond them %s kWh, worth ~%s KZT\n\n", f1(d.NormalLossKWh), modelSource(d.LossModel), f1(d.BeyondLossKWh), f1(d.ValueKZT))
	if len(d.Suspects) > 0 {
		fmt.Fprintf(w, "suspect meters (alert %s)\n", d.Suspects[0].Source)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tmeter\tscore\test. kWh hidden")
		for i, s := range d.Suspects {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", i+1, s.MeterID, f1(s.Score), f1(s.EstKWh))
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "meter\trole\tclass\tsite\tkWh\treadings\tregistered kW")
	for _, m := range d.Meters {
		reg := ""
		if m.RegisteredKW != nil {
			reg = f1(*m.RegisteredKW)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", m.MeterID, m.Role, m.Class, m.SiteID, f1(m.KWh), m.Readings, reg)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nhourly (%d hours; --csv for the series)\n", len(d.Hourly))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "hour\thead kWh\tmeters kWh\tresidual kWh\tnormal loss kWh\t")
	hs := d.Hourly
	if len(hs) > 24 {
		hs = hs[len(hs)-24:]
	}
	for _, h := range hs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", h.Hour.Format("2006-01-02 15:04"), f1(h.HeadKWh), f1(h.MetersKWh), f1(h.ResidualKWh), f1(h.LossBandKWh))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nalerts (%d)\n", len(d.Alerts))
	printAlertTable(w, d.Alerts)
	return nil
}

// modelSource names where a feeder's normal losses come from, and their
// share.
func modelSource(m *schemas.LossModel) string {
	if m == nil {
		return "-"
	}
	return fmt.Sprintf("%s %.1f%%", m.Source, 100*m.Share)
}
