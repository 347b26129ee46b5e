package store

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// UnknownMeter is a meter that has readings but no meter record: its
// readings are good and stored, but no one has told the registry where it
// hangs.
type UnknownMeter struct {
	MeterID  string    `json:"meter_id"`
	Readings uint64    `json:"readings"`
	KWh      float64   `json:"kwh"`
	FirstTS  time.Time `json:"first_ts"`
	LastTS   time.Time `json:"last_ts"`
}

// UnknownMeters lists the meters with readings and no meter record (a meter
// whose only records are tombstones counts as unknown), most readings first,
// at most limit of them (0: all). Readings count at their latest version, so
// a redelivered reading is counted once. GLOBAL NOT IN: see filter.
func (s *Store) UnknownMeters(ctx context.Context, limit int) ([]UnknownMeter, error) {
	q := "SELECT meter_id, count(), sum(kwh), min(ts), max(ts) FROM " + s.db + ".readings FINAL" +
		" WHERE meter_id GLOBAL NOT IN (SELECT meter_id FROM " + s.db + ".meters WHERE deleted = 0)" +
		" GROUP BY meter_id ORDER BY count() DESC, meter_id"
	if limit > 0 {
		q += " LIMIT " + strconv.Itoa(limit)
	}
	rows, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("cannot list meters unknown to the registry: %w", err)
	}
	defer rows.Close()
	var out []UnknownMeter
	for rows.Next() {
		var m UnknownMeter
		if err := rows.Scan(&m.MeterID, &m.Readings, &m.KWh, &m.FirstTS, &m.LastTS); err != nil {
			return nil, fmt.Errorf("cannot read meters unknown to the registry: %w", err)
		}
		m.FirstTS, m.LastTS = m.FirstTS.UTC(), m.LastTS.UTC()
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read meters unknown to the registry: %w", err)
	}
	return out, nil
}
