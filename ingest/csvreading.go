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
	// the last timestamp parsed and its cell (empty until one parses):
	// files written a time step at a time repeat one timestamp for every
	// meter
	lastTS []byte
	lastT  time.Time
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
	ts, ok := r.time(r.cells[r.ts])
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

// time parses a ts cell as parseTS does, once for a run of equal cells.
func (r *readingLine) time(v []byte) (time.Time, bool) {
	if len(r.lastTS) > 0 && bytes.Equal(v, r.lastTS) {
		return r.lastT, true
	}
	t, ok := parseTS(v)
	if ok {
		r.lastTS, r.lastT = append(r.lastTS[:0], v...), t
	}
	return t, ok
}

// parseTS reads a timestamp as the general path does: ParseTime of the
// trimmed cell, without allocating for the common form.
func parseTS(v []byte) (time.Time, bool) {
	if t, ok := schemas.FastTime(v); ok {
		return t, true
	}
	t, err := schemas.ParseTime("ts", string(bytes.TrimSpace(v)))
	return t, err == nil
}

// parseKWh reads a number as the general path does: ParseFloat of the
// trimmed cell, without allocating for a plain decimal.
func parseKWh(v []byte) (float64, bool) {
	if x, ok := schemas.FastDecimal(v); ok {
		return x, true
	}
	x, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
	return x, err == nil
}

// parseInterval reads a present interval_s as the general path does: a
// number of integral value (900, 900.0, 9e2) that fits 32 bits and is
// above zero.
func parseInterval(v []byte) (int32, bool) {
	return schemas.FastIntervalS(bytes.TrimSpace(v))
}
