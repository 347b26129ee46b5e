package store

import (
	"context"
	"fmt"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// The energy queries behind the feeder, site and operator pages, the feeder
// ranking and evidence export. Readings are counted by interval end: a
// window (from, to] holds the readings with from < ts <= to. Every query
// reads the latest version of each reading (latestReadings), so a
// corrected or redelivered reading counts once.

// MeterTotals sums each meter's readings over (from, to]. meterIDs nil
// means every meter; an empty non-nil slice means none.
func (s *Store) MeterTotals(ctx context.Context, meterIDs []string, from, to time.Time) (map[string]MeterTotal, error) {
	out := map[string]MeterTotal{}
	if meterIDs != nil && len(meterIDs) == 0 {
		return out, nil
	}
	err := s.forMeterChunks(meterIDs, func(cond string, args []any) error {
		args = append([]any{from.UTC(), to.UTC()}, args...)
		rows, err := s.conn.Query(ctx, "SELECT meter_id, count(), sum(k) FROM "+s.latestReadings(cond)+" GROUP BY meter_id", args...)
		if err != nil {
			return fmt.Errorf("cannot sum energy per meter: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var t MeterTotal
			if err := rows.Scan(&id, &t.Rows, &t.KWh); err != nil {
				return err
			}
			out[id] = t
		}
		return rows.Err()
	})
	return out, err
}

// forMeterChunks calls fn with an "AND meter_id IN (...)" condition and its
// arguments for each chunk of ids, or once with no condition for nil ids.
func (s *Store) forMeterChunks(ids []string, fn func(cond string, args []any) error) error {
	if ids == nil {
		return fn("", nil)
	}
	const chunk = 2000
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		if err := fn(" AND meter_id IN ("+placeholders(n)+")", anyStrings(ids[:n])); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// MeterHour is one meter's energy over one clock hour (by interval end:
// the hour holds readings ending in (hour, hour+1h]).
type MeterHour struct {
	MeterID string
	Hour    time.Time
	KWh     float64
	Rows    uint64
}

// MeterHourly returns hourly energy of the given meters over (from, to].
func (s *Store) MeterHourly(ctx context.Context, meterIDs []string, from, to time.Time) ([]MeterHour, error) {
	var out []MeterHour
	if len(meterIDs) == 0 {
		return out, nil
	}
	err := s.forMeterChunks(meterIDs, func(cond string, args []any) error {
		args = append([]any{from.UTC(), to.UTC()}, args...)
		rows, err := s.conn.Query(ctx, "SELECT meter_id, toStartOfHour(ts - 1) AS h, count(), sum(k) FROM "+s.latestReadings(cond)+" GROUP BY meter_id, h ORDER BY h, meter_id", args...)
		if err != nil {
			return fmt.Errorf("cannot sum hourly energy: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var m MeterHour
			if err := rows.Scan(&m.MeterID, &m.Hour, &m.Rows, &m.KWh); err != nil {
				return err
			}
			m.Hour = m.Hour.UTC()
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, err
}

// EachReading calls fn for every reading of the given meters over
// (from, to], by meter and time, at its latest version.
func (s *Store) EachReading(ctx context.Context, meterIDs []string, from, to time.Time, fn func(r schemas.Reading) error) error {
	if len(meterIDs) == 0 {
		return nil
	}
	return s.forMeterChunks(meterIDs, func(cond string, args []any) error {
		args = append([]any{from.UTC(), to.UTC()}, args...)
		rows, err := s.conn.Query(ctx, "SELECT meter_id, ts, k, iv FROM "+s.latestReadings(cond)+" ORDER BY meter_id, ts", args...)
		if err != nil {
			return fmt.Errorf("cannot read readings: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r schemas.Reading
			var iv uint32
			if err := rows.Scan(&r.MeterID, &r.TS, &r.KWh, &iv); err != nil {
				return err
			}
			r.TS, r.IntervalS = r.TS.UTC(), int32(iv)
			if err := fn(r); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// OperatorPurchases returns the marketplace purchases of an operator (and, if
// siteID is set, of that site) over (from, to], by time.
func (s *Store) OperatorPurchases(ctx context.Context, operatorID, siteID string, from, to time.Time) ([]schemas.Purchase, error) {
	q := "ts > ? AND ts <= ?"
	args := []any{from.UTC(), to.UTC()}
	if operatorID != "" {
		q += " AND operator_id = ?"
		args = append(args, operatorID)
	}
	if siteID != "" {
		q += " AND site_id = ?"
		args = append(args, siteID)
	}
	return s.purchases(ctx, q, args...)
}

// LatestReadingTime returns the end of the newest stored reading, or the
// zero time when there is none: pages default their window to end there,
// since replayed data may lie in the past.
func (s *Store) LatestReadingTime(ctx context.Context) (time.Time, error) {
	_, t, err := s.ReadingSpan(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot read latest reading time: %w", err)
	}
	return t, nil
}
