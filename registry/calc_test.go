package registry

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/rigwatch/rigwatch/schemas"
)

func TestCalc(t *testing.T) {
	rev := 200e6
	for _, c := range []struct {
		name      string
		in        CalcInput
		kw, mwh   float64
		tx        int64
		costKZT   float64
		wantModel string
	}{
		{"ministry example", CalcInput{Machines: 1000, WattsPerMachine: 3250}, 3250, 2340, 2340, 0, ""},
		{"explicit defaults", CalcInput{Machines: 1000, WattsPerMachine: 3250, HoursPerDay: 24, DaysPerMonth: 30, TariffKZTPerKWh: 20}, 3250, 2340, 2340, 46.8e6, ""},
		{"partial MWh rounds up", CalcInput{Machines: 1, WattsPerMachine: 3250, HoursPerDay: 10, DaysPerMonth: 31}, 3.25, 1.0075, 2, 0, ""},
		{"float noise does not add a transaction", CalcInput{Machines: 3, WattsPerMachine: 0.1 + 0.2, HoursPerDay: 24, DaysPerMonth: 30}, 0.0009, 0.000648, 1, 0, ""},
		{"model from catalogue", CalcInput{Machines: 10, Model: "antminer s19j-pro"}, 30.68, 22.0896, 23, 0, "Antminer S19j Pro"},
		{"fleet total", CalcInput{Machines: 3, TotalW: 10000, HoursPerDay: 12, DaysPerMonth: 1}, 10, 0.12, 1, 0, ""},
	} {
		got, err := Calc(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if math.Abs(got.TotalPowerKW-c.kw) > 1e-9 || got.MonthlyMWh != c.mwh || got.Transactions != c.tx ||
			math.Abs(got.MonthlyCostKZT-c.costKZT) > 1e-6 || got.Model != c.wantModel {
			t.Errorf("%s: got %+v", c.name, got)
		}
	}
	// Exactly 2340 MWh plus float noise must stay 2340 transactions.
	noisy := CalcInput{Machines: 1000, WattsPerMachine: 3250 * (1 + 1e-15)}
	if got, err := Calc(noisy); err != nil || got.Transactions != 2340 {
		t.Errorf("noisy example: %+v, %v", got, err)
	}
	got, err := Calc(CalcInput{Machines: 1000, WattsPerMachine: 3250, TariffKZTPerKWh: 20, RevenueKZT: &rev})
	if err != nil {
		t.Fatal(err)
	}
	if *got.ProfitKZT != 200e6-46.8e6 || math.Abs(*got.ProfitTaxKZT-0.15*(200e6-46.8e6)) > 1e-6 || *got.AIFCSaleKZT != 150e6 {
		t.Errorf("revenue figures: profit %v tax %v aifc %v", *got.ProfitKZT, *got.ProfitTaxKZT, *got.AIFCSaleKZT)
	}
}

func TestCalcRejects(t *testing.T) {
	neg := -1.0
	for _, c := range []struct {
		field string
		in    CalcInput
	}{
		{"machines", CalcInput{Machines: 0, WattsPerMachine: 3250}},
		{"machines", CalcInput{Machines: -5, WattsPerMachine: 3250}},
		{"watts_per_machine", CalcInput{Machines: 1}},
		{"watts_per_machine", CalcInput{Machines: 1, WattsPerMachine: -3250}},
		{"watts_per_machine", CalcInput{Machines: 1, WattsPerMachine: math.NaN()}},
		{"watts_per_machine", CalcInput{Machines: 1, WattsPerMachine: math.Inf(1)}},
		{"hours_per_day", CalcInput{Machines: 1, WattsPerMachine: 1, HoursPerDay: 25}},
		{"hours_per_day", CalcInput{Machines: 1, WattsPerMachine: 1, HoursPerDay: -1}},
		{"hours_per_day", CalcInput{Machines: 1, WattsPerMachine: 1, HoursPerDay: math.NaN()}},
		{"days_per_month", CalcInput{Machines: 1, WattsPerMachine: 1, DaysPerMonth: 32}},
		{"days_per_month", CalcInput{Machines: 1, WattsPerMachine: 1, DaysPerMonth: -1}},
		{"tariff_kzt_per_kwh", CalcInput{Machines: 1, WattsPerMachine: 1, TariffKZTPerKWh: -1}},
		{"tariff_kzt_per_kwh", CalcInput{Machines: 1, WattsPerMachine: 1, TariffKZTPerKWh: math.NaN()}},
		{"revenue_kzt", CalcInput{Machines: 1, WattsPerMachine: 1, RevenueKZT: &neg}},
		{"model", CalcInput{Machines: 1, Model: "Antminer S99"}},
		{"total_w", CalcInput{Machines: 1, TotalW: math.NaN()}},
		{"machines", CalcInput{Machines: math.MaxInt32, WattsPerMachine: 1e9}},
	} {
		_, err := Calc(c.in)
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: error %v, want ErrInvalidInput naming %s", c.in, err, c.field)
		}
	}
}

func TestFleetCalcInput(t *testing.T) {
	ix := newIndex(t)
	if err := ix.ApplyRigs([]schemas.Rig{rig("R1", "A", "active", 3250, 1), rig("R2", "A", "active", 3068, 1)}); err != nil {
		t.Fatal(err)
	}
	got, err := Calc(ix.SiteFleet("A", day(2)).CalcInput(24, 30, 0))
	if err != nil || got.Machines != 2 || got.TotalPowerKW != 6.318 || got.Transactions != 5 {
		t.Errorf("site fleet: %+v, %v", got, err)
	}
}

// TestCalcCheck: Check takes inputs as given (no defaults), names the
// refused one by its field and its short parameter name, and is what Calc
// applies after its defaults.
func TestCalcCheck(t *testing.T) {
	ok := CalcInput{Machines: 10, WattsPerMachine: 3250, HoursPerDay: 24, DaysPerMonth: 30}
	if err := ok.Check(); err != nil {
		t.Fatalf("valid input refused: %v", err)
	}
	for _, c := range []struct {
		param string
		edit  func(*CalcInput)
	}{
		{"hours", func(in *CalcInput) { in.HoursPerDay = 0 }},
		{"days", func(in *CalcInput) { in.DaysPerMonth = 0 }},
		{"watts", func(in *CalcInput) { in.Model = "Antminer S19" }},
		{"machines", func(in *CalcInput) { in.Machines = 0 }},
		{"tariff", func(in *CalcInput) { in.TariffKZTPerKWh = math.Inf(1) }},
		{"model", func(in *CalcInput) { in.WattsPerMachine, in.Model = 0, "Antminer S99" }},
	} {
		in := ok
		c.edit(&in)
		var ce *CalcInputError
		if err := in.Check(); !errors.As(err, &ce) || ce.Param != c.param || !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%+v: error %v, want a CalcInputError for %s", in, err, c.param)
		}
	}
}
