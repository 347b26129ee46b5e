package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCalcCommand(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want []string // substrings of the output
	}{
		{"ministry example", []string{"--machines", "1000", "--watts", "3250"},
			[]string{"3,250 kW", "2,340 MWh", "marketplace transactions  2,340 ", "not estimated"}},
		{"model, hours, days, tariff, revenue", []string{"--machines", "100", "--model", "antminer  S19J pro", "--hours", "12", "--days", "31", "--tariff", "20", "--revenue", "10000000"},
			[]string{"100 x 3,068 W (Antminer S19j Pro)", "306.8 kW", "114.13 MWh", "transactions  115 ", "2,282,592 KZT", "profit tax (15%)", "1,157,611.2 KZT", "to sell on AIFC (75%)", "7,500,000 KZT"}},
		{"fractional consumption rounds transactions up", []string{"--machines", "1", "--watts", "100", "--hours", "1", "--days", "1"},
			[]string{"0.1 kW", "0 MWh", "transactions  1 "}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := run(t, append([]string{"calc"}, c.args...)...)
			if err != nil {
				t.Fatalf("calc %v: %v", c.args, err)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("calc %v: output lacks %q:\n%s", c.args, w, out)
				}
			}
		})
	}
}

func TestCalcCommandJSON(t *testing.T) {
	out, err := run(t, "calc", "--machines", "1000", "--watts", "3250", "--tariff", "25", "--revenue", "100000000", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		TotalPowerKW float64 `json:"total_power_kw"`
		MonthlyMWh   float64 `json:"monthly_mwh"`
		Transactions int64   `json:"marketplace_transactions"`
		CostKZT      float64 `json:"monthly_cost_kzt"`
		ProfitTaxKZT float64 `json:"profit_tax_kzt"`
		AIFCSaleKZT  float64 `json:"aifc_sale_kzt"`
		Tariff       float64 `json:"tariff_kzt_per_kwh"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	// 2,340 MWh at 25 KZT/kWh = 58.5M KZT; profit 41.5M, tax 15% = 6.225M.
	if got.TotalPowerKW != 3250 || got.MonthlyMWh != 2340 || got.Transactions != 2340 || got.CostKZT != 58_500_000 ||
		got.ProfitTaxKZT != 6_225_000 || got.AIFCSaleKZT != 75_000_000 || got.Tariff != 25 {
		t.Errorf("calc --json: %+v", got)
	}
}

func TestCalcCommandRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string // in the error
	}{
		{"negative machines", []string{"--machines", "-5", "--watts", "3250"}, "--machines -5"},
		{"zero machines", []string{"--machines", "0", "--watts", "3250"}, "--machines 0"},
		{"zero watts", []string{"--machines", "10", "--watts", "0"}, "--watts 0"},
		{"negative watts", []string{"--machines", "10", "--watts", "-3250"}, "--watts"},
		{"NaN watts", []string{"--machines", "10", "--watts", "NaN"}, "--watts"},
		{"hours over 24", []string{"--machines", "10", "--watts", "3250", "--hours", "25"}, "--hours 25"},
		{"zero hours", []string{"--machines", "10", "--watts", "3250", "--hours", "0"}, "--hours 0"},
		{"zero days", []string{"--machines", "10", "--watts", "3250", "--days", "0"}, "--days 0"},
		{"32 days", []string{"--machines", "10", "--watts", "3250", "--days", "32"}, "--days 32"},
		{"negative tariff", []string{"--machines", "10", "--watts", "3250", "--tariff", "-1"}, "--tariff"},
		{"negative revenue", []string{"--machines", "10", "--watts", "3250", "--revenue", "-1"}, "--revenue"},
		{"unknown model", []string{"--machines", "10", "--model", "Antminer Z99"}, "not in the catalogue"},
		{"watts and model", []string{"--machines", "10", "--watts", "3250", "--model", "Antminer S19"}, "not both"},
		{"operator and site", []string{"--operator", "OP-001", "--site", "SITE-0001"}, "not both"},
		{"operator and machines", []string{"--operator", "OP-001", "--machines", "10"}, "from the registry"},
		{"site and watts", []string{"--site", "SITE-0001", "--watts", "3250"}, "from the registry"},
		{"nothing", nil, "--machines"},
		{"machines alone", []string{"--machines", "10"}, "--watts"},
		{"at without registry", []string{"--machines", "10", "--watts", "1", "--at", "2025-01-01T00:00:00Z"}, "--at"},
		{"not a number", []string{"--machines", "ten", "--watts", "3250"}, "invalid argument"},
		{"absurd fleet", []string{"--machines", "2000000000", "--watts", "100000"}, "beyond any real operation"},
		{"stray argument", []string{"--machines", "10", "--watts", "3250", "extra"}, "no arguments"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := run(t, append([]string{"calc"}, c.args...)...)
			if err == nil {
				t.Fatalf("calc %v succeeded:\n%s", c.args, out)
			}
			if exitCode(err) != 2 {
				t.Errorf("calc %v: %v is not a usage error (exit 2)", c.args, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, c.want) {
				t.Errorf("calc %v: error %q: want one line naming %q", c.args, msg, c.want)
			}
			if out != "" {
				t.Errorf("calc %v printed output on error: %q", c.args, out)
			}
		})
	}
}

func TestNum(t *testing.T) {
	if got := numFixed(17.2, 3); got != "17.200" {
		t.Errorf("numFixed(17.2, 3) = %q", got)
	}
	for v, want := range map[float64]string{0: "0", 3250: "3,250", 2340: "2,340", 6.318: "6.318", -1234567.5: "-1,234,567.5", 999: "999", 1000: "1,000", 0.0001: "0"} {
		if got := num(v, 3); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}
