package api

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rigwatch/rigwatch/store"
)

// Every query parameter and path value passes one of these parsers before
// it reaches a query: enumerations against their lists, numbers against
// their bounds, ids against a length and character check. Values then go
// to ClickHouse only as bound parameters.

// MaxIDLen bounds an id in a path or query.
const MaxIDLen = 128

// MaxSinceDays bounds how far back a window may reach.
const MaxSinceDays = 3660

var errBadParam = errors.New("bad parameter")

// IsBadParam reports whether err rejects a parameter (a 400 in the API, a
// usage error on the command line).
func IsBadParam(err error) bool { return errors.Is(err, errBadParam) }

func badParam(name, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", errBadParam, name, fmt.Sprintf(format, args...))
}

// ParseID checks an id from a path or query: 1..MaxIDLen bytes of valid
// UTF-8 without control characters.
func ParseID(name, s string) (string, error) {
	if s == "" {
		return "", badParam(name, "must not be empty")
	}
	if len(s) > MaxIDLen {
		return "", badParam(name, "longer than %d bytes", MaxIDLen)
	}
	if !utf8.ValidString(s) {
		return "", badParam(name, "not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", badParam(name, "holds a control character")
		}
	}
	return s, nil
}

// ParseSince turns a window start into an instant: a duration back from
// now ("30d", "12h", "90m", "1h30m") or an RFC 3339 time. Empty returns
// def. The result lies within MaxSinceDays before now.
func ParseSince(s string, now time.Time, def time.Duration) (time.Time, error) {
	if s == "" {
		return now.Add(-def), nil
	}
	if len(s) > 40 {
		return time.Time{}, badParam("since", "too long")
	}
	var d time.Duration
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		d = now.Sub(t)
		if d < 0 {
			return time.Time{}, badParam("since", "%q is in the future", s)
		}
	} else {
		d, err = ParseDuration(s)
		if err != nil {
			return time.Time{}, badParam("since", "%v", err)
		}
	}
	if d <= 0 || d > MaxSinceDays*24*time.Hour {
		return time.Time{}, badParam("since", "%q: want a window of up to %d days", s, MaxSinceDays)
	}
	return now.Add(-d), nil
}

// ParseDuration parses a Go duration extended with days ("30d", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 32)
		if err != nil || n < 0 || n > MaxSinceDays {
			return 0, fmt.Errorf("%q: want a duration like 30d, 12h or 90m", s)
		}
		days, s = n, s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		var err error
		rest, err = time.ParseDuration(s)
		if err != nil || rest < 0 || rest > MaxSinceDays*24*time.Hour {
			return 0, fmt.Errorf("%q: want a duration like 30d, 12h or 90m", s)
		}
	}
	return time.Duration(days)*24*time.Hour + rest, nil
}

// ParseTime parses an RFC 3339 time parameter.
func ParseTime(name, s string) (time.Time, error) {
	if len(s) > 40 {
		return time.Time{}, badParam(name, "too long")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, badParam(name, "want an RFC 3339 time like 2025-10-01T00:00:00Z")
	}
	if t.Year() < 2000 || t.Year() > 2200 {
		return time.Time{}, badParam(name, "year %d out of range", t.Year())
	}
	return t.UTC(), nil
}

// ParseInt parses an integer parameter within [lo, hi]; empty returns def.
func ParseInt(name, s string, def, lo, hi int) (int, error) {
	if s == "" {
		return def, nil
	}
	if len(s) > 12 {
		return 0, badParam(name, "too long")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, badParam(name, "want an integer")
	}
	if n < lo || n > hi {
		return 0, badParam(name, "%d is outside [%d, %d]", n, lo, hi)
	}
	return n, nil
}

// ParseFloat parses a finite number parameter within [lo, hi]; empty
// returns def.
func ParseFloat(name, s string, def, lo, hi float64) (float64, error) {
	if s == "" {
		return def, nil
	}
	if len(s) > 32 {
		return 0, badParam(name, "too long")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f {
		return 0, badParam(name, "want a number")
	}
	if f < lo || f > hi {
		return 0, badParam(name, "%v is outside [%v, %v]", f, lo, hi)
	}
	return f, nil
}

// checkParams rejects parameters a route does not take and repeated ones:
// a typo should not silently widen a query.
func checkParams(q url.Values, allowed ...string) error {
	for k, vs := range q {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			if len(k) > 40 {
				k = k[:40] + "..."
			}
			return badParam(strconv.Quote(k), "unknown parameter (this route takes %s)", strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return badParam(k, "given %d times", len(vs))
		}
	}
	return nil
}

// alertFilterParams are the parameters ParseAlertFilter reads.
var alertFilterParams = []string{"kind", "severity", "oblast", "status", "entity_id", "since", "limit", "offset", "order"}

// ParseAlertFilter reads an alert list filter from query parameters: kind,
// severity, oblast, status, entity_id, since, limit, offset, order. A
// since duration counts back from now (callers pass investigate.DataNow's).
func ParseAlertFilter(q url.Values, now time.Time) (store.AlertFilter, error) {
	var f store.AlertFilter
	if err := checkParams(q, alertFilterParams...); err != nil {
		return f, err
	}
	var err error
	get := func(name string) string { return q.Get(name) }
	f.Kind, f.Severity, f.Status, f.Order = get("kind"), get("severity"), get("status"), get("order")
	if v := get("oblast"); v != "" {
		if f.Oblast, err = ParseID("oblast", v); err != nil {
			return f, err
		}
	}
	if v := get("entity_id"); v != "" {
		if f.EntityID, err = ParseID("entity_id", v); err != nil {
			return f, err
		}
	}
	if v := get("since"); v != "" {
		if f.Since, err = ParseSince(v, now, 0); err != nil {
			return f, err
		}
	}
	if f.Limit, err = ParseInt("limit", get("limit"), 100, 1, store.MaxAlertLimit); err != nil {
		return f, err
	}
	if f.Offset, err = ParseInt("offset", get("offset"), 0, 0, 1_000_000); err != nil {
		return f, err
	}
	if err := f.Validate(); err != nil {
		return f, fmt.Errorf("%w: %v", errBadParam, err)
	}
	return f, nil
}
