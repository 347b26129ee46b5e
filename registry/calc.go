package registry

import (
	"fmt"
	"math"
)

// Ministry of Energy rules for licensed mining, as the calculator applies
// them.
const (
	// MarketplaceTxMWh is the most energy one marketplace transaction may
	// carry; electricity must come from the marketplace.
	MarketplaceTxMWh = 1.0
	// AIFCShare of mined assets must be sold on the AIFC exchange.
	AIFCShare = 0.75
	// ProfitTaxRate is the tax on mining profits.
	ProfitTaxRate = 0.15
)

// CalcInput is the calculator's input.
type CalcInput struct {
	// Machines is the number of mining machines; must be > 0.
	Machines int `json:"machines"`
	// WattsPerMachine is each machine's power; must be > 0 unless Model or
	// TotalW gives it.
	WattsPerMachine float64 `json:"watts_per_machine,omitempty"`
	// Model, if WattsPerMachine is zero, is looked up in the catalogue.
	Model string `json:"model,omitempty"`
	// TotalW, if > 0, is the power of all machines together and takes
	// precedence over Machines × WattsPerMachine (a registry fleet of mixed
	// models).
	TotalW float64 `json:"total_w,omitempty"`
	// HoursPerDay of operation; zero means 24; must be in (0, 24].
	HoursPerDay float64 `json:"hours_per_day,omitempty"`
	// DaysPerMonth of operation; zero means 30; must be in [1, 31].
	DaysPerMonth int `json:"days_per_month,omitempty"`
	// TariffKZTPerKWh is the electricity price; must be >= 0.
	TariffKZTPerKWh float64 `json:"tariff_kzt_per_kwh"`
	// RevenueKZT, if set, is the monthly value of mined assets; it enables
	// the profit, tax and AIFC figures.
	RevenueKZT *float64 `json:"revenue_kzt,omitempty"`
	// Catalogue resolves Model; nil means DefaultCatalogue().
	Catalogue *Catalogue `json:"-"`
}

// CalcResult is the calculator's output for one month of operation.
type CalcResult struct {
	Machines        int     `json:"machines"`
	WattsPerMachine float64 `json:"watts_per_machine"`
	Model           string  `json:"model,omitempty"`
	HoursPerDay     float64 `json:"hours_per_day"`
	DaysPerMonth    int     `json:"days_per_month"`
	TotalPowerKW    float64 `json:"total_power_kw"`
	MonthlyMWh      float64 `json:"monthly_mwh"`
	// Transactions is the number of marketplace transactions of at most
	// 1 MWh needed to buy MonthlyMWh.
	Transactions   int64   `json:"marketplace_transactions"`
	MonthlyCostKZT float64 `json:"monthly_cost_kzt"`
	// Set only when the input gave revenue.
	RevenueKZT   *float64 `json:"revenue_kzt,omitempty"`
	ProfitKZT    *float64 `json:"profit_kzt,omitempty"`
	ProfitTaxKZT *float64 `json:"profit_tax_kzt,omitempty"` // 15% of a positive profit
	AIFCSaleKZT  *float64 `json:"aifc_sale_kzt,omitempty"`  // 75% of revenue
}

// maxCalcMWh bounds the consumption the calculator accepts: far above the
// whole country's generation, and low enough for exact watt-hour integers.
const maxCalcMWh = 1e9

// CalcInputError is an input the calculator refuses: which one, its value
// and the rule it breaks. It wraps ErrInvalidInput.
type CalcInputError struct {
	// Field is the CalcInput field's JSON name, e.g. hours_per_day.
	Field string
	// Param is its short name, the same as a `rigwatch calc` flag and an
	// API query parameter: machines, watts, model, hours, days, tariff,
	// revenue, total_w.
	Param string
	Value any
	Rule  string
}

func (e *CalcInputError) Error() string {
	return fmt.Sprintf("%v: %s = %v: %s", ErrInvalidInput, e.Field, e.Value, e.Rule)
}

// Unwrap makes errors.Is(err, ErrInvalidInput) hold.
func (e *CalcInputError) Unwrap() error { return ErrInvalidInput }

// Check reports whether the calculator takes in exactly as given: zero
// hours or days are refused here, not read as defaults (Calc fills those
// in first). It is the calculator's one set of input rules: the command
// line and the API both call it before Calc, and Calc after its defaults.
// Its error is a *CalcInputError.
func (in CalcInput) Check() error {
	bad := func(field, param string, v any, rule string) error {
		return &CalcInputError{Field: field, Param: param, Value: v, Rule: rule}
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case in.Machines <= 0:
		return bad("machines", "machines", in.Machines, "must be > 0")
	case !(in.HoursPerDay > 0 && in.HoursPerDay <= 24):
		return bad("hours_per_day", "hours", in.HoursPerDay, "must be in (0, 24]")
	case in.DaysPerMonth < 1 || in.DaysPerMonth > 31:
		return bad("days_per_month", "days", in.DaysPerMonth, "must be in [1, 31]")
	case !(in.TariffKZTPerKWh >= 0) || !finite(in.TariffKZTPerKWh):
		return bad("tariff_kzt_per_kwh", "tariff", in.TariffKZTPerKWh, "must be a number >= 0")
	case in.RevenueKZT != nil && (!(*in.RevenueKZT >= 0) || !finite(*in.RevenueKZT)):
		return bad("revenue_kzt", "revenue", *in.RevenueKZT, "must be a finite number >= 0")
	case !(in.TotalW >= 0) || !finite(in.TotalW):
		return bad("total_w", "total_w", in.TotalW, "must be a finite number >= 0")
	case in.TotalW > 0:
		return nil // a registry fleet: its power is known
	case in.WattsPerMachine != 0 && in.Model != "":
		return bad("watts_per_machine", "watts", in.WattsPerMachine, "give the power per machine or a model, not both")
	case in.WattsPerMachine != 0:
		if !(in.WattsPerMachine > 0) || !finite(in.WattsPerMachine) {
			return bad("watts_per_machine", "watts", in.WattsPerMachine, "must be a number > 0")
		}
	case in.Model != "":
		if _, ok := in.catalogue().Lookup(in.Model); !ok {
			return bad("model", "model", in.Model, "not in the catalogue")
		}
	default:
		return bad("watts_per_machine", "watts", in.WattsPerMachine, "must be > 0 (or give a model)")
	}
	return nil
}

func (in CalcInput) catalogue() *Catalogue {
	if in.Catalogue != nil {
		return in.Catalogue
	}
	return DefaultCatalogue()
}

// Calc computes an operator's monthly electricity figures under the
// Ministry's rules. Zero hours and days mean 24 and 30; the input must
// then pass Check. Consumption is rounded to the watt-hour before
// transactions are counted, so floating-point noise (2340.0000000001 MWh)
// never costs an extra transaction. Every rejected input returns an error
// wrapping ErrInvalidInput that names the field.
func Calc(in CalcInput) (CalcResult, error) {
	if in.HoursPerDay == 0 {
		in.HoursPerDay = 24
	}
	if in.DaysPerMonth == 0 {
		in.DaysPerMonth = 30
	}
	if err := in.Check(); err != nil {
		return CalcResult{}, err
	}
	res := CalcResult{Machines: in.Machines, HoursPerDay: in.HoursPerDay, DaysPerMonth: in.DaysPerMonth}
	totalW := in.TotalW
	switch {
	case totalW > 0:
		res.WattsPerMachine = totalW / float64(in.Machines)
	case in.WattsPerMachine != 0:
		res.WattsPerMachine = in.WattsPerMachine
		totalW = float64(in.Machines) * in.WattsPerMachine
	default:
		m, _ := in.catalogue().Lookup(in.Model)
		res.Model, res.WattsPerMachine = m.Name, m.RatedPowerW
		totalW = float64(in.Machines) * m.RatedPowerW
	}

	res.TotalPowerKW = totalW / 1000
	wh := math.Round(totalW * in.HoursPerDay * float64(in.DaysPerMonth))
	if wh > maxCalcMWh*1e6 {
		return CalcResult{}, &CalcInputError{Field: "machines", Param: "machines", Value: in.Machines,
			Rule: fmt.Sprintf("consumption %.0f MWh a month is beyond any real operation", wh/1e6)}
	}
	whole := int64(wh)
	const whPerTx = int64(MarketplaceTxMWh * 1e6)
	res.MonthlyMWh = float64(whole) / 1e6
	res.Transactions = (whole + whPerTx - 1) / whPerTx
	res.MonthlyCostKZT = float64(whole) / 1000 * in.TariffKZTPerKWh

	if in.RevenueKZT != nil {
		rev := *in.RevenueKZT
		profit := rev - res.MonthlyCostKZT
		tax := ProfitTaxRate * max(profit, 0)
		aifc := AIFCShare * rev
		res.RevenueKZT, res.ProfitKZT, res.ProfitTaxKZT, res.AIFCSaleKZT = &rev, &profit, &tax, &aifc
	}
	return res, nil
}
