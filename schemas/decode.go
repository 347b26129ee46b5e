package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultMaxMessageBytes is the default limit on one input value (a Kafka
// message or a file line).
const DefaultMaxMessageBytes = 1 << 20

// ParseTime parses a contract timestamp (RFC 3339) into UTC, truncated to the
// second that ClickHouse DateTime stores.
func ParseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fieldErr(field, RuleFormat, "cannot parse %q as an RFC 3339 timestamp", clip(v))
	}
	return t.UTC().Truncate(time.Second), nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// wire forms: pointers tell a missing field from a zero one.
type (
	wireLicense struct {
		LicenseID          *string  `json:"license_id"`
		OperatorID         *string  `json:"operator_id"`
		OperatorName       *string  `json:"operator_name"`
		Status             *string  `json:"status"`
		ValidFrom          *string  `json:"valid_from"`
		ValidTo            *string  `json:"valid_to"`
		LicensedCapacityKW *float64 `json:"licensed_capacity_kw"`
		UpdatedAt          *string  `json:"updated_at"`
	}
	wireRig struct {
		RigID       *string  `json:"rig_id"`
		Serial      *string  `json:"serial"`
		Model       *string  `json:"model"`
		RatedPowerW *float64 `json:"rated_power_w"`
		HashrateTHs *float64 `json:"hashrate_ths"`
		OperatorID  *string  `json:"operator_id"`
		LicenseID   *string  `json:"license_id"`
		SiteID      *string  `json:"site_id"`
		Status      *string  `json:"status"`
		UpdatedAt   *string  `json:"updated_at"`
	}
	wireMeter struct {
		MeterID   *string `json:"meter_id"`
		FeederID  *string `json:"feeder_id"`
		Role      *string `json:"role"`
		Class     *string `json:"class"`
		SiteID    *string `json:"site_id"`
		Oblast    *string `json:"oblast"`
		UpdatedAt *string `json:"updated_at"`
	}
	wireReading struct {
		MeterID   *string          `json:"meter_id"`
		TS        *string          `json:"ts"`
		KWh       *float64         `json:"kwh"`
		IntervalS *json.RawMessage `json:"interval_s"` // an integer, however written: see parseInteger
	}
	wirePurchase struct {
		TxID           *string  `json:"tx_id"`
		OperatorID     *string  `json:"operator_id"`
		SiteID         *string  `json:"site_id"`
		MWh            *float64 `json:"mwh"`
		PriceKZTPerMWh *float64 `json:"price_kzt_per_mwh"`
		TS             *string  `json:"ts"`
	}
)

// fields collects the first error met while reading a wire struct.
type fields struct{ err error }

func (f *fields) str(name string, p *string, required bool) string {
	if p == nil {
		if required && f.err == nil {
			f.err = fieldErr(name, RuleMissing, "required field is missing")
		}
		return ""
	}
	return *p
}

func (f *fields) num(name string, p *float64, required bool) float64 {
	if p == nil {
		if required && f.err == nil {
			f.err = fieldErr(name, RuleMissing, "required field is missing")
		}
		return 0
	}
	return *p
}

func (f *fields) time(name string, p *string, required bool) time.Time {
	if p == nil {
		if required && f.err == nil {
			f.err = fieldErr(name, RuleMissing, "required field is missing")
		}
		return time.Time{}
	}
	t, err := ParseTime(name, *p)
	if err != nil && f.err == nil {
		f.err = err
	}
	return t
}

// unmarshal decodes one JSON object, turning encoding/json's errors into
// FieldErrors that name the field.
func unmarshal(data []byte, v any) error {
	if !utf8.Valid(data) {
		return &FieldError{Rule: RuleEncoding, Reason: "value is not valid UTF-8"}
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return &FieldError{Rule: RuleType, Reason: fmt.Sprintf("value must be a JSON object, got %s", te.Value)}
		}
		return fieldErr(te.Field, RuleType, "wrong type: got %s, want %s", te.Value, jsonKind(te.Type.String()))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Rule: RuleSyntax, Reason: fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))}
	}
	return &FieldError{Rule: RuleSyntax, Reason: "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
}

func jsonKind(goType string) string {
	switch {
	case strings.Contains(goType, "string"):
		return "string"
	case strings.Contains(goType, "float"):
		return "number"
	case strings.Contains(goType, "int"):
		return "integer"
	}
	return goType
}

// DecodeJSON decodes and validates one JSON value of stream s and appends
// the record to b. It returns a *FieldError when the value is rejected;
// nothing is appended then.
func DecodeJSON(s Stream, data []byte, b *Batch) error {
	var f fields
	switch s {
	case Licenses:
		var w wireLicense
		if err := unmarshal(data, &w); err != nil {
			return err
		}
		l := License{
			LicenseID:          f.str("license_id", w.LicenseID, true),
			OperatorID:         f.str("operator_id", w.OperatorID, true),
			OperatorName:       f.str("operator_name", w.OperatorName, false),
			Status:             f.str("status", w.Status, true),
			ValidFrom:          f.time("valid_from", w.ValidFrom, true),
			ValidTo:            f.time("valid_to", w.ValidTo, true),
			LicensedCapacityKW: w.LicensedCapacityKW,
			UpdatedAt:          f.time("updated_at", w.UpdatedAt, true),
		}
		if err := firstErr(f.err, l.Validate()); err != nil {
			return err
		}
		b.Licenses = append(b.Licenses, l)
	case Rigs:
		var w wireRig
		if err := unmarshal(data, &w); err != nil {
			return err
		}
		r := Rig{
			RigID:       f.str("rig_id", w.RigID, true),
			Serial:      f.str("serial", w.Serial, true),
			Model:       f.str("model", w.Model, false),
			RatedPowerW: f.num("rated_power_w", w.RatedPowerW, true),
			HashrateTHs: w.HashrateTHs,
			OperatorID:  f.str("operator_id", w.OperatorID, true),
			LicenseID:   f.str("license_id", w.LicenseID, true),
			SiteID:      f.str("site_id", w.SiteID, true),
			Status:      f.str("status", w.Status, true),
			UpdatedAt:   f.time("updated_at", w.UpdatedAt, true),
		}
		if err := firstErr(f.err, r.Validate()); err != nil {
			return err
		}
		b.Rigs = append(b.Rigs, r)
	case Meters:
		var w wireMeter
		if err := unmarshal(data, &w); err != nil {
			return err
		}
		m := Meter{
			MeterID:   f.str("meter_id", w.MeterID, true),
			FeederID:  f.str("feeder_id", w.FeederID, true),
			Role:      f.str("role", w.Role, true),
			Class:     f.str("class", w.Class, true),
			SiteID:    f.str("site_id", w.SiteID, false),
			Oblast:    f.str("oblast", w.Oblast, false),
			UpdatedAt: f.time("updated_at", w.UpdatedAt, true),
		}
		if err := firstErr(f.err, m.Validate()); err != nil {
			return err
		}
		b.Meters = append(b.Meters, m)
	case Readings:
		r, ok, err := scanReading(data)
		if !ok {
			r, err = decodeReading(data)
		}
		if err != nil {
			return err
		}
		b.Readings = append(b.Readings, r)
	case Purchases:
		var w wirePurchase
		if err := unmarshal(data, &w); err != nil {
			return err
		}
		p := Purchase{
			TxID:           f.str("tx_id", w.TxID, true),
			OperatorID:     f.str("operator_id", w.OperatorID, true),
			SiteID:         f.str("site_id", w.SiteID, false),
			MWh:            f.num("mwh", w.MWh, true),
			PriceKZTPerMWh: w.PriceKZTPerMWh,
			TS:             f.time("ts", w.TS, true),
		}
		if err := firstErr(f.err, p.Validate()); err != nil {
			return err
		}
		b.Purchases = append(b.Purchases, p)
	default:
		return &FieldError{Reason: fmt.Sprintf("unknown stream %q", s)}
	}
	return nil
}

// decodeReading decodes a reading with encoding/json: every input that
// scanReading leaves.
func decodeReading(data []byte) (Reading, error) {
	var w wireReading
	if err := unmarshal(data, &w); err != nil {
		return Reading{}, err
	}
	var interval *int32
	if w.IntervalS != nil {
		v, err := jsonInteger("interval_s", *w.IntervalS, parseIntervalS)
		if err != nil {
			return Reading{}, err
		}
		interval = &v
	}
	return buildReading(w.MeterID, w.TS, w.KWh, interval)
}

// jsonInteger reads an integer field that encoding/json left raw: a JSON
// value of another type breaks the type as encoding/json would say it;
// a number goes to parse.
func jsonInteger(field string, raw []byte, parse func([]byte) (int32, error)) (int32, error) {
	kind := ""
	switch raw[0] {
	case '"':
		kind = "string"
	case '{':
		kind = "object"
	case '[':
		kind = "array"
	case 't', 'f':
		kind = "bool"
	}
	if kind != "" {
		return 0, fieldErr(field, RuleType, "wrong type: got %s, want integer", kind)
	}
	return parse(raw)
}

// buildReading checks the decoded fields of a reading, nil where absent,
// and builds it.
func buildReading(meterID, ts *string, kwh *float64, intervalS *int32) (Reading, error) {
	var t parsedTime
	if ts != nil {
		t.present = true
		t.t, t.err = ParseTime("ts", *ts)
	}
	return readingOf(meterID, t, kwh, intervalS)
}

// parsedTime is a timestamp field already parsed: absent, or its time or
// its error.
type parsedTime struct {
	present bool
	t       time.Time
	err     error
}

// readingOf is buildReading with ts parsed, checking the fields in the same
// order.
func readingOf(meterID *string, ts parsedTime, kwh *float64, intervalS *int32) (Reading, error) {
	var f fields
	r := Reading{MeterID: f.str("meter_id", meterID, true)}
	switch {
	case !ts.present && f.err == nil:
		f.err = fieldErr("ts", RuleMissing, "required field is missing")
	case ts.err != nil && f.err == nil:
		f.err = ts.err
	}
	r.TS = ts.t
	r.KWh = f.num("kwh", kwh, true)
	if intervalS != nil {
		r.IntervalS = *intervalS
		if r.IntervalS == 0 && f.err == nil {
			f.err = fieldErr("interval_s", RuleRange, "must be > 0, got 0")
		}
	}
	if err := firstErr(f.err, r.Validate()); err != nil {
		return Reading{}, err
	}
	return r, nil
}

// Tombstone appends to b a deletion of key on registry stream s, taking
// effect at t.
func Tombstone(s Stream, key string, t time.Time, b *Batch) error {
	if !s.Registry() {
		return &FieldError{Rule: RuleMissing, Reason: fmt.Sprintf("null value (tombstone) on %s, which is not a keyed registry stream", s)}
	}
	if err := checkID("key", key, true); err != nil {
		return &FieldError{Field: "key", Rule: err.(*FieldError).Rule, Reason: "tombstone " + err.(*FieldError).Reason}
	}
	t = t.UTC().Truncate(time.Second)
	del := Meta{Deleted: true}
	switch s {
	case Licenses:
		b.Licenses = append(b.Licenses, License{LicenseID: key, UpdatedAt: t, Meta: del})
	case Rigs:
		b.Rigs = append(b.Rigs, Rig{RigID: key, UpdatedAt: t, Meta: del})
	case Meters:
		b.Meters = append(b.Meters, Meter{MeterID: key, UpdatedAt: t, Meta: del})
	}
	return nil
}

// CSVDecoder decodes CSV rows of one stream by header name. Unknown columns
// are ignored; an empty cell means the field is absent.
type CSVDecoder struct {
	stream Stream
	col    map[string]int
}

var csvFields = map[Stream][]string{
	Licenses:  {"license_id", "operator_id", "operator_name", "status", "valid_from", "valid_to", "licensed_capacity_kw", "updated_at"},
	Rigs:      {"rig_id", "serial", "model", "rated_power_w", "hashrate_ths", "operator_id", "license_id", "site_id", "status", "updated_at"},
	Meters:    {"meter_id", "feeder_id", "role", "class", "site_id", "oblast", "updated_at"},
	Readings:  {"meter_id", "ts", "kwh", "interval_s"},
	Purchases: {"tx_id", "operator_id", "site_id", "mwh", "price_kzt_per_mwh", "ts"},
}

// Fields returns the contract's field names of stream s, in contract order.
func Fields(s Stream) []string { return csvFields[s] }

// NewCSVDecoder returns a decoder for rows under header. It fails when the
// header lacks a column the stream always needs (the key field).
func NewCSVDecoder(s Stream, header []string) (*CSVDecoder, error) {
	d := &CSVDecoder{stream: s, col: make(map[string]int, len(header))}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := d.col[h]; dup {
			return nil, fmt.Errorf("header names column %q twice", h)
		}
		d.col[h] = i
	}
	if _, ok := csvFields[s]; !ok {
		return nil, fmt.Errorf("unknown stream %q", s)
	}
	if _, ok := d.col[s.KeyField()]; !ok {
		return nil, fmt.Errorf("header lacks the key column %q of %s", s.KeyField(), s)
	}
	return d, nil
}

// Column returns the index of the named column in the header, or -1.
func (d *CSVDecoder) Column(name string) int {
	if i, ok := d.col[name]; ok {
		return i
	}
	return -1
}

// Columns returns how many columns the header names.
func (d *CSVDecoder) Columns() int { return len(d.col) }

type csvRow struct {
	row []string
	col map[string]int
	err error
}

func (r *csvRow) cell(name string) (string, bool) {
	i, ok := r.col[name]
	if !ok || i >= len(r.row) {
		return "", false
	}
	v := r.row[i]
	return v, v != ""
}

func (r *csvRow) str(name string, required bool) string {
	v, ok := r.cell(name)
	if !ok && required && r.err == nil {
		r.err = fieldErr(name, RuleMissing, "required field is missing")
	}
	return v
}

func (r *csvRow) fnum(name string, required bool) *float64 {
	v, ok := r.cell(name)
	if !ok {
		if required && r.err == nil {
			r.err = fieldErr(name, RuleMissing, "required field is missing")
		}
		return nil
	}
	x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		if r.err == nil {
			r.err = fieldErr(name, RuleType, "wrong type: %q is not a number", clip(v))
		}
		return nil
	}
	return &x
}

func (r *csvRow) num(name string, required bool) float64 {
	if p := r.fnum(name, required); p != nil {
		return *p
	}
	return 0
}

func (r *csvRow) time(name string, required bool) time.Time {
	v, ok := r.cell(name)
	if !ok {
		if required && r.err == nil {
			r.err = fieldErr(name, RuleMissing, "required field is missing")
		}
		return time.Time{}
	}
	t, err := ParseTime(name, strings.TrimSpace(v))
	if err != nil && r.err == nil {
		r.err = err
	}
	return t
}

// Decode decodes and validates one CSV row and appends the record to b.
func (d *CSVDecoder) Decode(row []string, b *Batch) error {
	for _, c := range row {
		if !utf8.ValidString(c) {
			return &FieldError{Rule: RuleEncoding, Reason: "row is not valid UTF-8"}
		}
	}
	r := csvRow{row: row, col: d.col}
	switch d.stream {
	case Licenses:
		l := License{
			LicenseID: r.str("license_id", true), OperatorID: r.str("operator_id", true),
			OperatorName: r.str("operator_name", false), Status: r.str("status", true),
			ValidFrom: r.time("valid_from", true), ValidTo: r.time("valid_to", true),
			LicensedCapacityKW: r.fnum("licensed_capacity_kw", false), UpdatedAt: r.time("updated_at", true),
		}
		if err := firstErr(r.err, l.Validate()); err != nil {
			return err
		}
		b.Licenses = append(b.Licenses, l)
	case Rigs:
		g := Rig{
			RigID: r.str("rig_id", true), Serial: r.str("serial", true), Model: r.str("model", false),
			RatedPowerW: r.num("rated_power_w", true), HashrateTHs: r.fnum("hashrate_ths", false),
			OperatorID: r.str("operator_id", true), LicenseID: r.str("license_id", true),
			SiteID: r.str("site_id", true), Status: r.str("status", true), UpdatedAt: r.time("updated_at", true),
		}
		if err := firstErr(r.err, g.Validate()); err != nil {
			return err
		}
		b.Rigs = append(b.Rigs, g)
	case Meters:
		m := Meter{
			MeterID: r.str("meter_id", true), FeederID: r.str("feeder_id", true), Role: r.str("role", true),
			Class: r.str("class", true), SiteID: r.str("site_id", false), Oblast: r.str("oblast", false),
			UpdatedAt: r.time("updated_at", true),
		}
		if err := firstErr(r.err, m.Validate()); err != nil {
			return err
		}
		b.Meters = append(b.Meters, m)
	case Readings:
		g := Reading{MeterID: r.str("meter_id", true), TS: r.time("ts", true), KWh: r.num("kwh", true)}
		if v, ok := r.cell("interval_s"); ok {
			n, err := parseIntervalS(strings.TrimSpace(v))
			switch {
			case err != nil && r.err == nil:
				r.err = err
			case err == nil && n <= 0 && r.err == nil:
				r.err = fieldErr("interval_s", RuleRange, "must be > 0, got %d", n)
			}
			g.IntervalS = n
		}
		if err := firstErr(r.err, g.Validate()); err != nil {
			return err
		}
		b.Readings = append(b.Readings, g)
	case Purchases:
		p := Purchase{
			TxID: r.str("tx_id", true), OperatorID: r.str("operator_id", true), SiteID: r.str("site_id", false),
			MWh: r.num("mwh", true), PriceKZTPerMWh: r.fnum("price_kzt_per_mwh", false), TS: r.time("ts", true),
		}
		if err := firstErr(r.err, p.Validate()); err != nil {
			return err
		}
		b.Purchases = append(b.Purchases, p)
	}
	return nil
}
