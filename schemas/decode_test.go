package schemas

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestDecodeJSONRejects(t *testing.T) {
	big := `{"meter_id":"` + strings.Repeat("x", 300) + `","ts":"2025-10-01T00:15:00Z","kwh":1}`
	cases := []struct {
		name, stream, in string
		field, rule      string
	}{
		{"invalid JSON", "readings", `{meter_id: "M1"}`, "", RuleSyntax},
		{"truncated JSON", "readings", `{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1`, "", RuleSyntax},
		{"not an object", "readings", `[1,2]`, "", RuleType},
		{"missing required field", "readings", `{"ts":"2025-10-01T00:15:00Z","kwh":1}`, "meter_id", RuleMissing},
		{"null required field", "readings", `{"meter_id":null,"ts":"2025-10-01T00:15:00Z","kwh":1}`, "meter_id", RuleMissing},
		{"wrong type string for number", "readings", `{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":"1.5"}`, "kwh", RuleType},
		{"wrong type number for string", "readings", `{"meter_id":7,"ts":"2025-10-01T00:15:00Z","kwh":1}`, "meter_id", RuleType},
		{"fractional interval", "readings", `{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":900.5}`, "interval_s", RuleType},
		{"negative kwh", "readings", `{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":-0.1}`, "kwh", RuleRange},
		{"absurd kwh", "readings", `{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1e12}`, "kwh", RuleRange},
		{"infinite number", "readings", `{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1e999}`, "kwh", RuleType},
		{"NaN token", "readings", `{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":NaN}`, "", RuleSyntax},
		{"unparseable timestamp", "readings", `{"meter_id":"M1","ts":"yesterday","kwh":1}`, "ts", RuleFormat},
		{"zero timestamp", "readings", `{"meter_id":"M1","ts":"0001-01-01T00:00:00Z","kwh":1}`, "ts", RuleRange},
		{"year 9999", "readings", `{"meter_id":"M1","ts":"9999-12-31T23:59:59Z","kwh":1}`, "ts", RuleRange},
		{"zero interval", "readings", `{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":0}`, "interval_s", RuleRange},
		{"unknown enum value", "meters", `{"meter_id":"M1","feeder_id":"F1","role":"substation","class":"residential","updated_at":"2025-10-01T00:00:00Z"}`, "role", RuleEnum},
		{"site meter without site", "meters", `{"meter_id":"M1","feeder_id":"F1","role":"site","class":"mining","updated_at":"2025-10-01T00:00:00Z"}`, "site_id", RuleMissing},
		{"licence status", "licenses", `{"license_id":"L1","operator_id":"O1","status":"pending","valid_from":"2025-01-01T00:00:00Z","valid_to":"2026-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}`, "status", RuleEnum},
		{"licence ends before it starts", "licenses", `{"license_id":"L1","operator_id":"O1","status":"active","valid_from":"2026-01-01T00:00:00Z","valid_to":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}`, "valid_to", RuleRange},
		{"zero rated power", "rigs", `{"rig_id":"R1","serial":"S1","rated_power_w":0,"operator_id":"O1","license_id":"L1","site_id":"X","status":"active","updated_at":"2025-01-01T00:00:00Z"}`, "rated_power_w", RuleRange},
		{"zero purchase", "purchases", `{"tx_id":"T1","operator_id":"O1","mwh":0,"ts":"2025-01-01T00:00:00Z"}`, "mwh", RuleRange},
		{"invalid UTF-8", "readings", "{\"meter_id\":\"M\xff\",\"ts\":\"2025-10-01T00:15:00Z\",\"kwh\":1}", "", RuleEncoding},
		{"id too long", "readings", big, "meter_id", RuleSize},
		{"control character in id", "readings", `{"meter_id":"M\u0001","ts":"2025-10-01T00:15:00Z","kwh":1}`, "meter_id", RuleEncoding},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b Batch
			err := DecodeJSON(Stream(c.stream), []byte(c.in), &b)
			if err == nil {
				t.Fatalf("accepted %s", c.in)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if got := FieldOf(err); got != c.field {
				t.Errorf("field = %q, want %q (reason %q)", got, c.field, err)
			}
			if got := RuleOf(err); got != c.rule {
				t.Errorf("rule = %q, want %q (reason %q)", got, c.rule, err)
			}
			if c.field != "" && !strings.Contains(err.Error(), c.field) {
				t.Errorf("reason %q does not name the field %s", err, c.field)
			}
			if b.Len() != 0 {
				t.Errorf("rejected value left %d records in the batch", b.Len())
			}
		})
	}
}

func TestDecodeJSONAccepts(t *testing.T) {
	var b Batch
	in := `{"meter_id":"M1","ts":"2025-10-01T05:15:00.9+05:00","kwh":0,"unknown_field":{"a":1}}`
	if err := DecodeJSON(Readings, []byte(in), &b); err != nil {
		t.Fatal(err)
	}
	r := b.Readings[0]
	want := time.Date(2025, 10, 1, 0, 15, 0, 0, time.UTC)
	if !r.TS.Equal(want) || r.TS.Location() != time.UTC || r.IntervalS != DefaultIntervalS || r.KWh != 0 {
		t.Errorf("decoded %+v, want ts %v, interval 900, kwh 0", r, want)
	}
	in = `{"license_id":"L1","operator_id":"O1","status":"active","valid_from":"2025-01-01T00:00:00Z","valid_to":"2026-01-01T00:00:00Z","licensed_capacity_kw":500,"updated_at":"2025-01-01T00:00:00Z"}`
	if err := DecodeJSON(Licenses, []byte(in), &b); err != nil {
		t.Fatal(err)
	}
	if c := b.Licenses[0].LicensedCapacityKW; c == nil || *c != 500 {
		t.Errorf("licensed_capacity_kw = %v, want 500", c)
	}
}

func TestCSVDecoder(t *testing.T) {
	d, err := NewCSVDecoder(Readings, []string{"\ufeffkwh", "extra", "ts", "meter_id"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		row         []string
		field, rule string
	}{
		{[]string{"1.5", "x", "2025-10-01T00:15:00Z", "M1"}, "", ""},
		{[]string{"NaN", "", "2025-10-01T00:15:00Z", "M1"}, "kwh", RuleFinite},
		{[]string{"-Inf", "", "2025-10-01T00:15:00Z", "M1"}, "kwh", RuleFinite},
		{[]string{"abc", "", "2025-10-01T00:15:00Z", "M1"}, "kwh", RuleType},
		{[]string{"-2", "", "2025-10-01T00:15:00Z", "M1"}, "kwh", RuleRange},
		{[]string{"1", "", "", "M1"}, "ts", RuleMissing},
		{[]string{"1", "", "2025-13-01T00:00:00Z", "M1"}, "ts", RuleFormat},
		{[]string{"1", "", "2025-10-01T00:15:00Z"}, "meter_id", RuleMissing},
	}
	for _, c := range cases {
		var b Batch
		err := d.Decode(c.row, &b)
		if c.field == "" {
			if err != nil || len(b.Readings) != 1 || b.Readings[0].KWh != 1.5 {
				t.Errorf("%v: err %v, batch %+v", c.row, err, b.Readings)
			}
			continue
		}
		if FieldOf(err) != c.field || RuleOf(err) != c.rule {
			t.Errorf("%v: got %v (field %q rule %q), want field %q rule %q", c.row, err, FieldOf(err), RuleOf(err), c.field, c.rule)
		}
	}
	if _, err := NewCSVDecoder(Readings, []string{"ts", "kwh"}); err == nil {
		t.Error("header without meter_id accepted")
	}
}

func TestTombstone(t *testing.T) {
	var b Batch
	at := time.Date(2025, 10, 1, 0, 0, 0, 5, time.UTC)
	if err := Tombstone(Rigs, "R1", at, &b); err != nil {
		t.Fatal(err)
	}
	if r := b.Rigs[0]; !r.Deleted || r.RigID != "R1" || !r.UpdatedAt.Equal(at.Truncate(time.Second)) {
		t.Errorf("tombstone = %+v", r)
	}
	if err := Tombstone(Readings, "M1", at, &b); FieldOf(err) != "" || err == nil {
		t.Errorf("tombstone on readings: %v", err)
	}
}

func TestMigrations(t *testing.T) {
	m, err := Migrations("rigwatch")
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]bool{}
	for _, mg := range m {
		for _, s := range mg.Statements {
			if strings.Contains(s, "{db}") || strings.HasSuffix(s, ";") {
				t.Errorf("statement not prepared: %q", s)
			}
			if f := strings.Fields(s); len(f) > 5 && f[0] == "CREATE" && f[1] == "TABLE" {
				tables[strings.TrimPrefix(f[5], "rigwatch.")] = true
			}
		}
	}
	for _, want := range []string{"licenses", "rigs", "meters", "readings", "purchases", "alerts", "rejects"} {
		if !tables[want] {
			t.Errorf("no table %s in the migrations (have %v)", want, tables)
		}
	}
	if _, err := Migrations("x; DROP DATABASE y"); err == nil {
		t.Error("unsafe database name accepted")
	}
}

// FuzzDecodeJSON checks that no input crashes a decoder, and that what is
// accepted is valid and finite.
func FuzzDecodeJSON(f *testing.F) {
	f.Add(uint8(3), []byte(`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1.5,"interval_s":900}`))
	f.Add(uint8(0), []byte(`{"license_id":"L1","operator_id":"O1","status":"active","valid_from":"2025-01-01T00:00:00Z","valid_to":"2026-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}`))
	f.Add(uint8(1), []byte(`{"rig_id":"R1","serial":"S1","rated_power_w":3250,"operator_id":"O1","license_id":"L1","site_id":"X","status":"active","updated_at":"2025-01-01T00:00:00Z"}`))
	f.Add(uint8(2), []byte(`{"meter_id":"M1","feeder_id":"F1","role":"site","class":"mining","site_id":"S","updated_at":"2025-10-01T00:00:00Z"}`))
	f.Add(uint8(4), []byte(`{"tx_id":"T1","operator_id":"O1","mwh":1,"ts":"2025-01-01T00:00:00Z"}`))
	f.Add(uint8(3), []byte(`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1e999}`))
	streams := []Stream{Licenses, Rigs, Meters, Readings, Purchases}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		s := streams[int(which)%len(streams)]
		var b Batch
		err := DecodeJSON(s, data, &b)
		if err != nil {
			if b.Len() != 0 {
				t.Fatalf("rejected input left records")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if b.Count(s) != 1 {
			t.Fatalf("accepted input gave %d records", b.Count(s))
		}
		for _, r := range b.Readings {
			if math.IsNaN(r.KWh) || math.IsInf(r.KWh, 0) || r.KWh < 0 || r.TS.Before(MinTime) || r.IntervalS <= 0 {
				t.Fatalf("accepted bad reading %+v", r)
			}
		}
	})
}

// FuzzCSVDecode checks the CSV row decoder the same way.
func FuzzCSVDecode(f *testing.F) {
	f.Add("M1", "2025-10-01T00:15:00Z", "1.5", "900")
	f.Add("M1", "2025-10-01T00:15:00Z", "NaN", "")
	f.Add("", "x", "-1", "0")
	d, err := NewCSVDecoder(Readings, []string{"meter_id", "ts", "kwh", "interval_s"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, m, ts, kwh, iv string) {
		var b Batch
		if err := d.Decode([]string{m, ts, kwh, iv}, &b); err != nil {
			if b.Len() != 0 {
				t.Fatal("rejected row left records")
			}
			return
		}
		r := b.Readings[0]
		if math.IsNaN(r.KWh) || math.IsInf(r.KWh, 0) || r.KWh < 0 || r.IntervalS <= 0 || r.MeterID == "" {
			t.Fatalf("accepted bad reading %+v", r)
		}
	})
}
