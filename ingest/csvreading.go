package ingest

import (
	"bytes"
	"strconv"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// readingLine is replay's fast path for the commonest input there is, a
// readings CSV line such as
//
//	MTR-10010360,2025-09-30T19:15:00Z,2.472,900
//
// It decodes the line's bytes in one pass without splitting it into
// strings, keeps one copy of each meter ID, and hands the reading to the
// same Reading.Validate as the general path (splitCSV, then
// schemas.CSVDecoder). It answers false, having appended nothing, for any
// line it does not know to be read identically there: a quote, a byte
// outside printable ASCII, a cell count other than the header's, or a
// value that does not parse or validate. The general path then accepts or
// rejects it, so the fast path never decides what is rejected, or why;
// FuzzReadingLine checks that both agree on every input.
type readingLine struct {
	cols                  int // cells in the header
	meter, ts, kwh, ivCol int // their indexes; -1 when absent
	ids                   map[string]string
	cells                 [][]byte
}

// maxIDs bounds the meter IDs a readingLine keeps: a national year names
// millions of meters, and one copy of each is an optimisation, not a need.
const maxIDs = 1 << 18

// newReadingLine returns the fast path for lines under the header dec
// decoded, or nil when the header lacks a column the fast path needs.
func newReadingLine(dec *schemas.CSVDecoder) *readingLine {
	r := &readingLine{cols: dec.Columns(), meter: dec.Column("meter_id"), ts: dec.Column("ts"),
		kwh: dec.Column("kwh"), ivCol: dec.Column("interval_s"), ids: map[string]string{}}
	if r.meter < 0 || r.ts < 0 || r.kwh < 0 {
		return nil
	}
	return r
}

// decode appends the reading of line to b and reports true, or reports
// false and leaves b as it was.
func (r *readingLine) decode(line []byte, b *schemas.Batch) bool {
	r.cells = r.cells[:0]
	start := 0
	for i, c := range line {
		if c < 0x20 || c > 0x7e || c == '"' {
			return false
		}
		if c == ',' {
			r.cells = append(r.cells, line[start:i])
			start = i + 1
		}
	}
	r.cells = append(r.cells, line[start:])
	if len(r.cells) != r.cols {
		return false
	}
	id := r.cells[r.meter]
	if len(id) == 0 {
		return false
	}
	ts, ok := parseTS(r.cells[r.ts])
	if !ok {
		return false
	}
	kwh, ok := parseKWh(r.cells[r.kwh])
	if !ok {
		return false
	}
	var iv int32
	if r.ivCol >= 0 && len(r.cells[r.ivCol]) > 0 {
		if iv, ok = parseInterval(r.cells[r.ivCol]); !ok {
			return false
		}
	}
	g := schemas.Reading{MeterID: r.id(id), TS: ts, KWh: kwh, IntervalS: iv}
	if g.Validate() != nil {
		return false
	}
	b.Readings = append(b.Readings, g)
	return true
}

// id returns the one copy of a meter ID.
func (r *readingLine) id(b []byte) string {
	if s, ok := r.ids[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(r.ids) >= maxIDs {
		clear(r.ids)
	}
	r.ids[s] = s
	return s
}

// parseTS reads a timestamp as schemas.ParseTime does: directly when it
// has the form 2006-01-02T15:04:05Z, else through ParseTime itself.
func parseTS(v []byte) (time.Time, bool) {
	if len(v) == 20 && v[4] == '-' && v[7] == '-' && v[10] == 'T' && v[13] == ':' && v[16] == ':' && v[19] == 'Z' {
		y, ok1 := digits(v[0:4])
		mo, ok2 := digits(v[5:7])
		d, ok3 := digits(v[8:10])
		h, ok4 := digits(v[11:13])
		mi, ok5 := digits(v[14:16])
		s, ok6 := digits(v[17:19])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && mo >= 1 && mo <= 12 && d >= 1 &&
			d <= daysIn(time.Month(mo), y) && h <= 23 && mi <= 59 && s <= 59 {
			return time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC), true
		}
	}
	t, err := schemas.ParseTime("ts", string(bytes.TrimSpace(v)))
	return t, err == nil
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// parseKWh reads a number as strconv.ParseFloat does. A plain decimal of at
// most 15 digits is its digits, an exact float64, divided by an exact power
// of ten: one correctly rounded operation, the same result as ParseFloat's
// (its own exact fast path). Anything else goes through ParseFloat.
func parseKWh(v []byte) (float64, bool) {
	var mant uint64
	nd, frac, dot := 0, 0, false
	for i, c := range v {
		switch {
		case c >= '0' && c <= '9':
			mant = mant*10 + uint64(c-'0')
			nd++
			if dot {
				frac++
			}
		case c == '.' && !dot && i > 0 && i < len(v)-1:
			dot = true
		default:
			nd = 99
		}
	}
	if nd >= 1 && nd <= 15 {
		return float64(mant) / pow10[frac], true
	}
	x, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
	return x, err == nil
}

// parseInterval reads a present interval_s as the general path does: an
// integer that fits 32 bits and is above zero.
func parseInterval(v []byte) (int32, bool) {
	if len(v) <= 9 {
		if n, ok := digits(v); ok && n > 0 {
			return int32(n), true
		}
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 32)
	return int32(n), err == nil && n > 0
}
