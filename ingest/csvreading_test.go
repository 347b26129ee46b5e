package ingest

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/rigwatch/rigwatch/schemas"
)

// general decodes line the way replay does without the fast path.
func general(t *testing.T, dec *schemas.CSVDecoder, line string) (*schemas.Batch, error) {
	t.Helper()
	b := &schemas.Batch{}
	cells, err := splitCSV([]byte(line), nil)
	if err != nil {
		return b, err
	}
	return b, dec.Decode(cells, b)
}

func readingDecoder(t *testing.T, header string) *schemas.CSVDecoder {
	t.Helper()
	dec, err := schemas.NewCSVDecoder(schemas.Readings, strings.Split(header, ","))
	if err != nil {
		t.Fatal(err)
	}
	return dec
}

// agree checks that the fast path either declines line or reads it exactly
// as the general path does, and reports whether it took it.
func agree(t *testing.T, dec *schemas.CSVDecoder, fast *readingLine, line string) bool {
	t.Helper()
	want, werr := general(t, dec, line)
	got := &schemas.Batch{}
	if !fast.decode([]byte(line), got) {
		if got.Len() != 0 {
			t.Fatalf("%q: declined but appended %+v", line, got.Readings)
		}
		return false
	}
	if werr != nil {
		t.Fatalf("%q: fast path accepted %+v, general path rejects: %v", line, got.Readings, werr)
	}
	if !reflect.DeepEqual(got.Readings, want.Readings) {
		t.Fatalf("%q: fast path read %+v, general path %+v", line, got.Readings, want.Readings)
	}
	if math.Signbit(got.Readings[0].KWh) != math.Signbit(want.Readings[0].KWh) {
		t.Fatalf("%q: sign of zero differs", line)
	}
	return true
}

func TestReadingLine(t *testing.T) {
	dec := readingDecoder(t, "meter_id,ts,kwh,interval_s")
	fast := newReadingLine(dec)
	for _, c := range []struct {
		line string
		fast bool // the fast path takes it
	}{
		{"MTR-10010360,2025-09-30T19:15:00Z,2.472,900", true},
		{"M 1,2025-09-30T19:15:00Z,0,", true},                    // default interval
		{"M1,2024-02-29T23:59:59Z,1234567.89012345,86400", true}, // leap day, 15 digits
		{"M1,2025-10-01T00:15:00+05:00,1.5,900", true},           // ParseTime's other forms
		{"M1,2025-10-01T00:15:00.5Z,1.5,900", true},
		{"M1,2025-10-01T00:15:00Z, 1.5 , 900 ", true},            // spaces around numbers
		{"M1,2025-10-01T00:15:00Z,1e-3,900", true},               // ParseFloat's other forms
		{"M1,2025-10-01T00:15:00Z,0.1234567890123456,900", true}, // 16 digits
		{"M1,2025-10-01T00:15:00Z,5.,+900", true},
		{"M1,2025-10-01T00:15:00Z,1,900.0", true}, // integral values however written
		{"M1,2025-10-01T00:15:00Z,1,9e2", true},
		{"M1,2025-10-01T00:15:00Z,1,900.5", false},
		{"M1,2023-02-29T00:00:00Z,1,900", false}, // no such day
		{"M1,2025-10-01T24:00:00Z,1,900", false},
		{"M1,2025-10-01T00:00:60Z,1,900", false},
		{"M1,2025-10-01T00:15:00Z,-1,900", false},
		{"M1,2025-10-01T00:15:00Z,NaN,900", false},
		{"M1,2025-10-01T00:15:00Z,1,0", false},
		{"M1,2025-10-01T00:15:00Z,1,99999999999", false},
		{"M1,2025-10-01T00:15:00Z,1e9,900", false}, // above the physical limit
		{",2025-10-01T00:15:00Z,1,900", false},
		{"M1,,1,900", false},
		{"M1,2025-10-01T00:15:00Z,,900", false},
		{"M1,2025-10-01T00:15:00Z,1", false},       // a cell short
		{"M1,2025-10-01T00:15:00Z,1,900,x", false}, // a cell over
		{`"M1",2025-10-01T00:15:00Z,1,900`, false}, // quoted
		{"M\t1,2025-10-01T00:15:00Z,1,900", false}, // control character
		{"Mé,2025-10-01T00:15:00Z,1,900", false},   // beyond ASCII
		{"M1,1999-12-31T23:59:59Z,1,900", false},   // before the contract's range
	} {
		if got := agree(t, dec, fast, c.line); got != c.fast {
			t.Errorf("%q: fast path took it: %v, want %v", c.line, got, c.fast)
		}
	}
	// Columns in another order, one unknown, interval absent.
	dec = readingDecoder(t, "kwh,x,ts,meter_id")
	if !agree(t, dec, newReadingLine(dec), "0.25,whatever,2025-10-01T00:15:00Z,M7") {
		t.Error("the fast path declined a reordered header")
	}
}

// FuzzReadingLine checks the fast path against the general path on every
// input: it may decline a line, but a line it takes must be read exactly
// as splitCSV and schemas.CSVDecoder read it.
func FuzzReadingLine(f *testing.F) {
	for _, s := range []string{
		"MTR-10010360,2025-09-30T19:15:00Z,2.472,900", "M1,2024-02-29T23:59:59Z,0.000,60", "M1,2025-10-01T00:15:00+05:00,1.5,",
		"M1,2025-10-01T00:15:00Z,1e-3,900", "M1,2025-13-01T00:15:00Z,1,900", "M1,2025-10-01T00:15:00Z,00000000000000001.5,900",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\r\n") {
			return
		}
		dec := readingDecoder(t, "meter_id,ts,kwh,interval_s")
		fast := newReadingLine(dec)
		agree(t, dec, fast, line)
		// again, after a line of its own timestamp and after another's:
		// the fast path parses a run of equal timestamps once
		agree(t, dec, fast, line)
		agree(t, dec, fast, "M1,2025-10-01T00:15:00Z,1,900")
		agree(t, dec, fast, line)
	})
}
