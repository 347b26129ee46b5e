package store

import (
	"context"
	"fmt"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// Names of detect_state rows.
const (
	stateEngine    = "engine"
	stateHorizon   = "horizon"
	stateHoursFrom = "hours_from"
	stateHoursTo   = "hours_to"
)

// SaveDetectorState stores the live detector's snapshot after it evaluated
// up to to; the latest replaces the earlier ones.
func (s *Store) SaveDetectorState(ctx context.Context, to time.Time, snapshot []byte) error {
	return s.insert(ctx, "detect_state", "name, event_time, state, version", 1, func(int) []any {
		return []any{stateEngine, to.UTC(), string(snapshot), nextVersion(0)}
	})
}

// LoadDetectorState returns the latest snapshot saved and the event time it
// was saved at, or nil when there is none.
func (s *Store) LoadDetectorState(ctx context.Context) ([]byte, time.Time, error) {
	var (
		n     uint64
		to    time.Time
		state string
	)
	err := s.conn.QueryRow(ctx, "SELECT count(), argMax(event_time, version), argMax(state, version) FROM "+s.db+".detect_state WHERE name = ?",
		stateEngine).Scan(&n, &to, &state)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("cannot read the detector's state: %w", err)
	}
	if n == 0 {
		return nil, time.Time{}, nil
	}
	return []byte(state), to.UTC(), nil
}

// PublishHorizon records that live detection is about to read the readings
// up to t: ingest marks the readings it stores at or before it from now on.
func (s *Store) PublishHorizon(ctx context.Context, t time.Time) error {
	return s.insert(ctx, "detect_state", "name, event_time, state, version", 1, func(int) []any {
		return []any{stateHorizon, t.UTC(), "", nextVersion(0)}
	})
}

// Horizon returns the horizon live detection published last, zero before
// it has read anything. A detector that takes over may start behind the
// last one: it reads everything it needs afresh at its start.
func (s *Store) Horizon(ctx context.Context) (time.Time, error) {
	var (
		n uint64
		t time.Time
	)
	err := s.conn.QueryRow(ctx, "SELECT count(), argMax(event_time, version) FROM "+s.db+".detect_state WHERE name = ?", stateHorizon).Scan(&n, &t)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot read the detector's horizon: %w", err)
	}
	if n == 0 {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// PublishHours records, once the detector's hours up to to are stored,
// the span the stored hours cover: from (when non-zero: the detector
// started afresh there) up to to. Pages read hours inside it and raw
// readings outside.
func (s *Store) PublishHours(ctx context.Context, from, to time.Time) error {
	n := 1
	if !from.IsZero() {
		n = 2
	}
	v := nextVersion(0)
	return s.insert(ctx, "detect_state", "name, event_time, state, version", n, func(i int) []any {
		if i == 1 {
			return []any{stateHoursFrom, from.UTC(), "", v}
		}
		return []any{stateHoursTo, to.UTC(), "", v}
	})
}

// HoursSpan returns the span [from, to) of hours the detector has stored
// without a gap, as last published; zeros before any.
func (s *Store) HoursSpan(ctx context.Context) (from, to time.Time, err error) {
	var nf, nt uint64
	err = s.conn.QueryRow(ctx, "SELECT countIf(name = ?), argMaxIf(event_time, version, name = ?), countIf(name = ?), argMaxIf(event_time, version, name = ?) FROM "+
		s.db+".detect_state WHERE name IN (?, ?)", stateHoursFrom, stateHoursFrom, stateHoursTo, stateHoursTo, stateHoursFrom, stateHoursTo).Scan(&nf, &from, &nt, &to)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("cannot read the span of the detector's hours: %w", err)
	}
	if nf == 0 || nt == 0 || !to.After(from) {
		return time.Time{}, time.Time{}, nil
	}
	return from.UTC(), to.UTC(), nil
}

// ReadingMark is a reading stored behind live detection.
type ReadingMark struct {
	MeterID   string
	TS        time.Time
	IntervalS int32
	Noted     time.Time
}

// MarkReadings records readings stored behind live detection, noted now.
func (s *Store) MarkReadings(ctx context.Context, marks []ReadingMark) error {
	if len(marks) == 0 {
		return nil
	}
	now := time.Now().UTC()
	return s.insert(ctx, "reading_marks", "meter_id, ts, interval_s, noted", len(marks), func(i int) []any {
		m := &marks[i]
		return []any{m.MeterID, m.TS.UTC(), uint32(max(m.IntervalS, 0)), now}
	})
}

// ReadingMarksSince returns the marks noted at or after t.
func (s *Store) ReadingMarksSince(ctx context.Context, t time.Time) ([]ReadingMark, error) {
	rows, err := s.conn.Query(ctx, "SELECT meter_id, ts, interval_s, noted FROM "+s.db+".reading_marks WHERE noted >= ?", t.UTC())
	if err != nil {
		return nil, fmt.Errorf("cannot read the readings marked late: %w", err)
	}
	defer rows.Close()
	var out []ReadingMark
	for rows.Next() {
		var m ReadingMark
		var iv uint32
		if err := rows.Scan(&m.MeterID, &m.TS, &iv, &m.Noted); err != nil {
			return nil, err
		}
		m.IntervalS, m.TS, m.Noted = int32(iv), m.TS.UTC(), m.Noted.UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// WriteHours stores the feeders' and sites' hours the detector derived;
// an hour written again replaces the earlier row.
func (s *Store) WriteHours(ctx context.Context, fs []schemas.FeederHour, ss []schemas.SiteHour) error {
	v := nextVersion(0)
	if len(fs) > 0 {
		err := s.insert(ctx, "feeder_hours", "feeder_id, hour, head_kwh, meters_kwh, meters, complete, version", len(fs), func(i int) []any {
			f := &fs[i]
			c := uint8(0)
			if f.Complete {
				c = 1
			}
			return []any{f.FeederID, f.Hour.UTC(), f.HeadKWh, f.MetersKWh, uint32(f.Meters), c, v}
		})
		if err != nil {
			return err
		}
	}
	if len(ss) == 0 {
		return nil
	}
	return s.insert(ctx, "site_hours", "site_id, meter_id, hour, kwh, covered_s, capacity_kw, version", len(ss), func(i int) []any {
		h := &ss[i]
		return []any{h.SiteID, h.MeterID, h.Hour.UTC(), h.KWh, uint32(h.CoveredS), h.CapacityKW, v}
	})
}

// FeederHours returns the stored hours of the given feeders (nil: every
// feeder) in [from, to), at their latest versions, by feeder and hour.
func (s *Store) FeederHours(ctx context.Context, feederIDs []string, from, to time.Time) ([]schemas.FeederHour, error) {
	var out []schemas.FeederHour
	if feederIDs != nil && len(feederIDs) == 0 {
		return out, nil
	}
	where, args := "hour >= ? AND hour < ?", []any{from.UTC(), to.UTC()}
	if feederIDs != nil {
		where += " AND feeder_id IN (" + placeholders(len(feederIDs)) + ")"
		args = append(args, anyStrings(feederIDs)...)
	}
	rows, err := s.conn.Query(ctx, "SELECT feeder_id, hour, h, m, n, c FROM "+latestFeederHours(s.db, where)+" ORDER BY feeder_id, hour", args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read feeder hours: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f schemas.FeederHour
		var n uint32
		var c uint8
		if err := rows.Scan(&f.FeederID, &f.Hour, &f.HeadKWh, &f.MetersKWh, &n, &c); err != nil {
			return nil, err
		}
		f.Hour, f.Meters, f.Complete = f.Hour.UTC(), int(n), c == 1
		out = append(out, f)
	}
	return out, rows.Err()
}

// latestFeederHours is a subquery of the latest version of each stored
// feeder hour matching where (columns feeder_id, hour, h, m, n, c): argMax
// over a GROUP BY, which on 18.16 answers several times faster than FINAL.
func latestFeederHours(db, where string) string {
	return "(SELECT feeder_id, hour, argMax(head_kwh, version) AS h, argMax(meters_kwh, version) AS m, argMax(meters, version) AS n, argMax(complete, version) AS c FROM " +
		db + ".feeder_hours WHERE " + where + " GROUP BY feeder_id, hour)"
}

// FeederTotal is a feeder's energy over a window from its stored hours.
type FeederTotal struct {
	HeadKWh, MetersKWh float64
	Hours, Complete    int
	// Meters is the most meters with readings the feeder had in an hour.
	Meters int
}

// FeederTotals sums every feeder's stored hours in [from, to): the feeder
// ranking's one query. Every feeder's hours are read, so FINAL (the table
// keeps the latest version of each feeder and hour) streams them once in
// key order and the sum groups by feeder alone: on 18.16 about a third of
// the time of the latest versions by argMax over a GROUP BY of every
// feeder-hour, which it replaced (BenchmarkFeederTotals: 20,000 feeders
// over a day, 0.07 s against 0.20 s).
func (s *Store) FeederTotals(ctx context.Context, from, to time.Time) (map[string]FeederTotal, error) {
	rows, err := s.conn.Query(ctx, "SELECT feeder_id, sum(head_kwh), sum(meters_kwh), count(), sum(complete), max(meters) FROM "+s.db+".feeder_hours FINAL WHERE hour >= ? AND hour < ? GROUP BY feeder_id",
		from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("cannot sum feeder hours: %w", err)
	}
	defer rows.Close()
	out := map[string]FeederTotal{}
	for rows.Next() {
		var id string
		var t FeederTotal
		var n, c uint64
		var m uint32
		if err := rows.Scan(&id, &t.HeadKWh, &t.MetersKWh, &n, &c, &m); err != nil {
			return nil, err
		}
		t.Hours, t.Complete, t.Meters = int(n), int(c), int(m)
		out[id] = t
	}
	return out, rows.Err()
}

// SiteHours returns the stored hours of the given sites in [from, to), at
// their latest versions, by site, meter and hour.
func (s *Store) SiteHours(ctx context.Context, siteIDs []string, from, to time.Time) ([]schemas.SiteHour, error) {
	var out []schemas.SiteHour
	if len(siteIDs) == 0 {
		return out, nil
	}
	args := append([]any{from.UTC(), to.UTC()}, anyStrings(siteIDs)...)
	rows, err := s.conn.Query(ctx, "SELECT site_id, meter_id, hour, argMax(kwh, version), argMax(covered_s, version), argMax(capacity_kw, version) FROM "+
		s.db+".site_hours WHERE hour >= ? AND hour < ? AND site_id IN ("+placeholders(len(siteIDs))+") GROUP BY site_id, meter_id, hour ORDER BY site_id, meter_id, hour", args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read site hours: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h schemas.SiteHour
		var c uint32
		if err := rows.Scan(&h.SiteID, &h.MeterID, &h.Hour, &h.KWh, &c, &h.CapacityKW); err != nil {
			return nil, err
		}
		h.Hour, h.CoveredS = h.Hour.UTC(), int(c)
		out = append(out, h)
	}
	return out, rows.Err()
}
