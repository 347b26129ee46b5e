package schemas

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestParseInteger(t *testing.T) {
	cases := []struct {
		lit  string
		want int32
		kind integerKind
	}{
		{"900", 900, intOK},
		{"900.0", 900, intOK},
		{"900.000", 900, intOK},
		{"9e2", 900, intOK},
		{"9E+2", 900, intOK},
		{"9.0e2", 900, intOK},
		{"90000e-2", 900, intOK},
		{"0.9e3", 900, intOK},
		{"+900", 900, intOK},
		{"0900", 900, intOK},
		{"900.", 900, intOK},
		{"-1800.0", -1800, intOK},
		{"0", 0, intOK},
		{"-0.0", 0, intOK},
		{"0e-999999999999", 0, intOK},
		{"0.000e999999999", 0, intOK},
		{"2147483647", math.MaxInt32, intOK},
		{"2147483647.000", math.MaxInt32, intOK},
		{"-2147483648", math.MinInt32, intOK},
		{"-2.147483648e9", math.MinInt32, intOK},
		{"900.5", 0, intFractional},
		{"900.0000000000000001", 0, intFractional}, // a float64 would round it to 900
		{"9.005e2", 0, intFractional},
		{"90001e-2", 0, intFractional},
		{"1e-999999999999", 0, intFractional},
		{".5", 0, intFractional},
		{"2147483648", 0, intOutOfRange},
		{"-2147483649", 0, intOutOfRange},
		{"2.147483648e9", 0, intOutOfRange},
		{"99999999999", 0, intOutOfRange},
		{"9e9", 0, intOutOfRange},
		{"1e999999999999", 0, intOutOfRange},
		{"123456789012345678901234567890", 0, intOutOfRange},
		{"", 0, intNotNumber},
		{"-", 0, intNotNumber},
		{".", 0, intNotNumber},
		{"9e", 0, intNotNumber},
		{"9e+", 0, intNotNumber},
		{"e2", 0, intNotNumber},
		{"0x10", 0, intNotNumber},
		{"1_000", 0, intNotNumber},
		{"Inf", 0, intNotNumber},
		{"NaN", 0, intNotNumber},
		{"900 ", 0, intNotNumber},
		{"--9", 0, intNotNumber},
	}
	for _, c := range cases {
		got, kind := parseInteger(c.lit)
		if got != c.want || kind != c.kind {
			t.Errorf("parseInteger(%q) = %d, %d; want %d, %d", c.lit, got, kind, c.want, c.kind)
		}
		if b, bk := parseInteger([]byte(c.lit)); b != got || bk != kind {
			t.Errorf("parseInteger([]byte(%q)) = %d, %d; the string gave %d, %d", c.lit, b, bk, got, kind)
		}
	}
}

// TestParseIntegerAgreesWithFloat checks parseInteger against strconv on
// the literals whose float64 value is exact: integers within int32, written
// the ways producers write them.
func TestParseIntegerAgreesWithFloat(t *testing.T) {
	for _, n := range []int64{0, 1, 7, 900, 1800, 86400, 1 << 20, math.MaxInt32, math.MinInt32, math.MaxInt32 + 1, -math.MaxInt32 - 2} {
		for _, lit := range []string{
			strconv.FormatInt(n, 10),
			strconv.FormatFloat(float64(n), 'f', 1, 64),
			strconv.FormatFloat(float64(n), 'e', -1, 64),
			strconv.FormatFloat(float64(n), 'E', -1, 64),
			fmt.Sprintf("%d.000E0", n),
			fmt.Sprintf("%d00e-2", n),
		} {
			got, kind := parseInteger(lit)
			inRange := n >= math.MinInt32 && n <= math.MaxInt32
			switch {
			case inRange && (kind != intOK || int64(got) != n):
				t.Errorf("parseInteger(%q) = %d, %d; want %d", lit, got, kind, n)
			case !inRange && kind != intOutOfRange:
				t.Errorf("parseInteger(%q) = %d, %d; want out of range", lit, got, kind)
			}
		}
	}
}

// TestIntegralIntervalAccepted: interval_s written as a float, as Python's
// json module writes 900.0, is accepted by every reader alike.
func TestIntegralIntervalAccepted(t *testing.T) {
	d, err := NewCSVDecoder(Readings, []string{"meter_id", "ts", "kwh", "interval_s"})
	if err != nil {
		t.Fatal(err)
	}
	for _, lit := range []string{"1800", "1800.0", "18e2", "1.8e3", "1.800E+3", "180000e-2"} {
		in := `{"meter_id":"M1","ts":"2025-10-01T00:30:00Z","kwh":1.5,"interval_s":` + lit + `}`
		var b Batch
		if err := DecodeJSON(Readings, []byte(in), &b); err != nil || b.Readings[0].IntervalS != 1800 {
			t.Errorf("JSON interval_s %s: %v %+v", lit, err, b.Readings)
		}
		// The same through encoding/json alone (the fast path may read it).
		if r, err := decodeReading([]byte(in)); err != nil || r.IntervalS != 1800 {
			t.Errorf("encoding/json interval_s %s: %v %+v", lit, err, r)
		}
		b = Batch{}
		if err := d.Decode([]string{"M1", "2025-10-01T00:30:00Z", "1.5", " " + lit}, &b); err != nil || b.Readings[0].IntervalS != 1800 {
			t.Errorf("CSV interval_s %q: %v %+v", lit, err, b.Readings)
		}
	}
}

// TestIntervalRejects: what is not an integer within range is rejected
// with the field and the rule, by JSON and CSV alike.
func TestIntervalRejects(t *testing.T) {
	d, err := NewCSVDecoder(Readings, []string{"meter_id", "ts", "kwh", "interval_s"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		json, csv string
		rule      string
	}{
		{"900.5", "900.5", RuleType},
		{"900.0000000000000001", "900.0000000000000001", RuleType},
		{"9.005e2", "9.005e2", RuleType},
		{`"900"`, "nine hundred", RuleType},
		{"true", "0x384", RuleType},
		{"[900]", "900s", RuleType},
		{"2147483648", "2147483648", RuleRange},
		{"9e9", "9e9", RuleRange},
		{"-1e300", "-1e300", RuleRange},
		{"1e5", "1e5", RuleRange},
		{"0.0", "0.0", RuleRange},
		{"-900.0", "-900.0", RuleRange},
	}
	for _, c := range cases {
		in := `{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":` + c.json + `}`
		var b Batch
		err := DecodeJSON(Readings, []byte(in), &b)
		if FieldOf(err) != "interval_s" || RuleOf(err) != c.rule || b.Len() != 0 {
			t.Errorf("JSON interval_s %s: %v (field %q, rule %q), want interval_s %s", c.json, err, FieldOf(err), RuleOf(err), c.rule)
		}
		err = d.Decode([]string{"M1", "2025-10-01T00:15:00Z", "1", c.csv}, &b)
		if FieldOf(err) != "interval_s" || RuleOf(err) != c.rule || b.Len() != 0 {
			t.Errorf("CSV interval_s %q: %v (field %q, rule %q), want interval_s %s", c.csv, err, FieldOf(err), RuleOf(err), c.rule)
		}
	}
}

var decimalLiteral = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// FuzzParseInteger checks parseInteger against exact rational arithmetic
// on every decimal literal, and that it calls anything else not a number.
func FuzzParseInteger(f *testing.F) {
	for _, s := range []string{"900", "900.0", "9e2", "9.0e2", "900.5", "2147483648", "-2147483648", "1e-5", "0.0e9", ".5", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, lit string) {
		got, kind := parseInteger(lit)
		if !decimalLiteral.MatchString(lit) {
			if kind != intNotNumber {
				t.Fatalf("parseInteger(%q) = %d, %d; want not a number", lit, got, kind)
			}
			return
		}
		if _, exp, ok := strings.Cut(strings.ToLower(lit), "e"); ok && len(strings.TrimLeft(exp, "+-0")) > 4 {
			return // big.Rat would spend the fuzzer's time on 10^huge
		}
		var r big.Rat
		if _, ok := r.SetString(lit); !ok {
			t.Fatalf("big.Rat cannot read %q", lit)
		}
		want := intOK
		switch {
		case !r.IsInt():
			want = intFractional
		case !r.Num().IsInt64() || r.Num().Int64() > math.MaxInt32 || r.Num().Int64() < math.MinInt32:
			want = intOutOfRange
		}
		if kind != want || (want == intOK && int64(got) != r.Num().Int64()) {
			t.Fatalf("parseInteger(%q) = %d, %d; exact arithmetic says %s, %d", lit, got, kind, r.RatString(), want)
		}
	})
}
