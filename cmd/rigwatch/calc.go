package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/store"
)

// calcOutput is what `rigwatch calc --json` prints: the calculator's result
// and, for a registry fleet, which one and when.
type calcOutput struct {
	registry.CalcResult
	OperatorID      string     `json:"operator_id,omitempty"`
	SiteID          string     `json:"site_id,omitempty"`
	At              *time.Time `json:"at,omitempty"`
	TariffKZTPerKWh float64    `json:"tariff_kzt_per_kwh"`
}

func newCalcCmd(g *globalFlags) *cobra.Command {
	var (
		machines                  int
		watts, hours, tariff, rev float64
		days                      int
		model, operator, site     string
		asJSON                    bool
		at                        atFlag
	)
	cmd := &cobra.Command{
		Use:   "calc",
		Short: "Compliance calculator: total power, monthly consumption, marketplace transactions, cost",
		Long: "Applies the Ministry of Energy's rules to a fleet: --machines N with --watts W or --model NAME,\n" +
			"or the active registered rigs of --operator ID or --site ID (read from the registry in ClickHouse).\n" +
			"Electricity is bought on the marketplace at most 1 MWh per transaction. With --revenue, also the\n" +
			"15% profit tax and the 75% of mined assets to be sold on AIFC.\n\n" +
			"Example: rigwatch calc --machines 1000 --watts 3250  ->  3,250 kW, 2,340 MWh, 2,340 transactions",
		Args: exactArgs(0, "no arguments (use flags)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			set := func(name string) bool { return cmd.Flags().Changed(name) }
			fromRegistry := set("operator") || set("site")
			switch {
			case set("operator") && set("site"):
				return usagef("give --operator or --site, not both")
			case fromRegistry && (set("machines") || set("watts") || set("model")):
				return usagef("--operator and --site take the machines and their power from the registry: drop --machines, --watts and --model")
			case set("watts") && set("model"):
				return usagef("give --watts or --model, not both")
			case !fromRegistry && !set("machines"):
				return usagef("give --machines N with --watts W or --model NAME, or --operator ID or --site ID")
			case !fromRegistry && !set("watts") && !set("model"):
				return usagef("give --watts W or --model NAME for the %d machines", machines)
			case set("at") && !fromRegistry:
				return usagef("--at applies only with --operator or --site")
			}
			in := registry.CalcInput{Machines: machines, WattsPerMachine: watts, Model: model,
				HoursPerDay: hours, DaysPerMonth: days, TariffKZTPerKWh: tariff}
			if set("revenue") {
				in.RevenueKZT = &rev
			}
			// The calculator's own rules, as the API applies them; the
			// values are taken as typed (--hours 0 is refused, not read as
			// the default).
			if !fromRegistry {
				if err := in.Check(); err != nil {
					return calcUsage(err)
				}
			}
			out := calcOutput{OperatorID: operator, SiteID: site, TariffKZTPerKWh: tariff}
			if fromRegistry {
				t, err := at.time()
				if err != nil {
					return err
				}
				scope := store.SiteScope(site)
				if operator != "" {
					scope = store.OperatorScope(operator)
				}
				ix, err := loadRegistry(cmd.Context(), g, scope, &t)
				if err != nil {
					return err
				}
				var f registry.Fleet
				if operator != "" {
					f = ix.OperatorFleet(operator, t)
				} else {
					f = ix.SiteFleet(site, t)
				}
				if f.Machines == 0 {
					what := "operator " + operator
					if site != "" {
						what = "site " + site
					}
					return usagef("%s has no active registered rigs at %s", what, t.Format(time.RFC3339))
				}
				revenue := in.RevenueKZT
				in = f.CalcInput(hours, days, tariff)
				in.RevenueKZT = revenue
				if err := in.Check(); err != nil {
					return calcUsage(err)
				}
				out.At = &t
			}
			res, err := registry.Calc(in)
			if err != nil {
				return calcUsage(err)
			}
			out.CalcResult = res
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			printCalc(cmd.OutOrStdout(), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&machines, "machines", 0, "number of mining machines")
	f.Float64Var(&watts, "watts", 0, "power of each machine, W")
	f.StringVar(&model, "model", "", "machine model from the catalogue, e.g. \"Antminer S19j Pro\" (instead of --watts)")
	f.StringVar(&operator, "operator", "", "take the fleet of this operator's active registered rigs")
	f.StringVar(&site, "site", "", "take the fleet of this site's active registered rigs")
	f.Float64Var(&hours, "hours", 24, "hours of operation per day, (0, 24]")
	f.IntVar(&days, "days", 30, "days of operation per month, [1, 31]")
	f.Float64Var(&tariff, "tariff", 0, "electricity price, KZT per kWh (0: cost not estimated)")
	f.Float64Var(&rev, "revenue", 0, "monthly value of mined assets, KZT: adds profit tax and the AIFC share")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	at.register(cmd)
	return cmd
}

// calcUsage turns the calculator's refusal of an input into a usage error
// naming its flag: "--hours 0: must be in (0, 24]".
func calcUsage(err error) error {
	var ce *registry.CalcInputError
	if errors.As(err, &ce) {
		return usagef("--%s %v: %s", ce.Param, ce.Value, ce.Rule)
	}
	if errors.Is(err, registry.ErrInvalidInput) {
		return usageError{err}
	}
	return err
}

func printCalc(w io.Writer, o calcOutput) {
	r := o.CalcResult
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	switch {
	case o.OperatorID != "":
		fmt.Fprintf(tw, "fleet\toperator %s at %s\n", o.OperatorID, o.At.Format(time.RFC3339))
	case o.SiteID != "":
		fmt.Fprintf(tw, "fleet\tsite %s at %s\n", o.SiteID, o.At.Format(time.RFC3339))
	}
	machines := num(float64(r.Machines), 0) + " x " + num(r.WattsPerMachine, 1) + " W"
	switch {
	case r.Model != "":
		machines += " (" + r.Model + ")"
	case o.OperatorID != "" || o.SiteID != "":
		machines += " on average"
	}
	fmt.Fprintf(tw, "machines\t%s\n", machines)
	fmt.Fprintf(tw, "operation\t%s h/day, %d days/month\n", num(r.HoursPerDay, 2), r.DaysPerMonth)
	fmt.Fprintf(tw, "total power\t%s kW\n", num(r.TotalPowerKW, 3))
	fmt.Fprintf(tw, "monthly consumption\t%s MWh\n", num(r.MonthlyMWh, 3))
	fmt.Fprintf(tw, "marketplace transactions\t%s (at most %s MWh each)\n", num(float64(r.Transactions), 0), num(registry.MarketplaceTxMWh, 3))
	if o.TariffKZTPerKWh > 0 {
		fmt.Fprintf(tw, "estimated monthly cost\t%s KZT (at %s KZT/kWh)\n", num(r.MonthlyCostKZT, 2), num(o.TariffKZTPerKWh, 4))
	} else {
		fmt.Fprintf(tw, "estimated monthly cost\tnot estimated (give --tariff KZT_PER_KWH)\n")
	}
	if r.RevenueKZT != nil {
		fmt.Fprintf(tw, "revenue\t%s KZT\n", num(*r.RevenueKZT, 2))
		fmt.Fprintf(tw, "profit before tax\t%s KZT\n", num(*r.ProfitKZT, 2))
		fmt.Fprintf(tw, "profit tax (%s%%)\t%s KZT\n", num(registry.ProfitTaxRate*100, 2), num(*r.ProfitTaxKZT, 2))
		fmt.Fprintf(tw, "to sell on AIFC (%s%%)\t%s KZT\n", num(registry.AIFCShare*100, 2), num(*r.AIFCSaleKZT, 2))
	}
	tw.Flush()
}
