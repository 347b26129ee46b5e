package store

import (
	"context"
	"fmt"
	"time"
)

// Names of detect_state rows.
const (
	stateEngine  = "engine"
	stateHorizon = "horizon"
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
