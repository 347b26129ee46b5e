package api

import (
	"net/url"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

var fuzzNow = time.Date(2025, 10, 3, 0, 0, 0, 0, time.UTC)

// FuzzParseAlertFilter: any query string either fails cleanly or yields a
// filter whose enumerations are in their lists and whose bounds hold.
func FuzzParseAlertFilter(f *testing.F) {
	for _, s := range []string{"kind=feeder_imbalance&status=open", "since=30d&limit=5&order=-score", "oblast=%27+OR+1%3D1+--",
		"kind=x'; DROP TABLE alerts; --", "limit=-1", "since=9999999d", "order=score;DROP", "entity_id=%00", "a=1&a=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := ParseAlertFilter(q, fuzzNow)
		if err != nil {
			return
		}
		if err := flt.Validate(); err != nil {
			t.Fatalf("accepted an invalid filter %+v: %v", flt, err)
		}
		if flt.Limit < 1 || flt.Limit > store.MaxAlertLimit || len(flt.Oblast) > MaxIDLen || len(flt.EntityID) > MaxIDLen {
			t.Fatalf("bounds: %+v", flt)
		}
		if flt.Kind != "" && !contains(schemas.AlertKinds, flt.Kind) {
			t.Fatalf("kind %q", flt.Kind)
		}
		if !flt.Since.IsZero() && (flt.Since.After(fuzzNow) || fuzzNow.Sub(flt.Since) > MaxSinceDays*24*time.Hour) {
			t.Fatalf("since %s", flt.Since)
		}
	})
}

func contains(set []string, s string) bool {
	for _, x := range set {
		if x == s {
			return true
		}
	}
	return false
}

// FuzzParseSince: accepted windows are positive and bounded.
func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"30d", "12h", "1d12h", "90m", "2025-10-01T00:00:00Z", "0d", "-1h", "9223372036854775807ns", "d", "1e9d", "' OR 1=1 --"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSince(s, fuzzNow, 24*time.Hour)
		if err != nil {
			return
		}
		d := fuzzNow.Sub(got)
		if d <= 0 || d > MaxSinceDays*24*time.Hour {
			t.Fatalf("ParseSince(%q) = %s: window %s out of bounds", s, got, d)
		}
	})
}

// FuzzParseCalcInput: accepted calculator inputs never crash Calc.
func FuzzParseCalcInput(f *testing.F) {
	for _, s := range []string{"machines=1000&watts=3250&hours=24&days=30&tariff=25", "machines=1&model=Antminer+S19j+Pro", "machines=1e9&watts=NaN", "machines=1&watts=Inf&revenue=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		in, err := ParseCalcInput(q)
		if err != nil {
			return
		}
		if in.Machines < 1 || in.HoursPerDay <= 0 || in.HoursPerDay > 24 || in.WattsPerMachine != in.WattsPerMachine {
			t.Fatalf("accepted %+v", in)
		}
		_, _ = registryCalc(in)
	})
}

var registryCalc = registry.Calc
