package store

import (
	"context"
	"fmt"
)

// ReadingTotals is the distinct-latest view of the readings table.
type ReadingTotals struct {
	Rows   uint64  `json:"rows"`
	Meters uint64  `json:"meters"`
	KWh    float64 `json:"kwh"`
}

// ReadingTotals counts distinct (meter_id, ts) readings at their latest
// version and sums their energy.
func (s *Store) ReadingTotals(ctx context.Context) (ReadingTotals, error) {
	var t ReadingTotals
	err := s.conn.QueryRow(ctx, "SELECT count(), uniqExact(meter_id), sum(kwh) FROM "+s.db+".readings FINAL").Scan(&t.Rows, &t.Meters, &t.KWh)
	if err != nil {
		return t, fmt.Errorf("cannot count readings: %w", err)
	}
	return t, nil
}

// MeterEnergy returns each meter's count of distinct readings and summed
// energy at latest versions.
func (s *Store) MeterEnergy(ctx context.Context) (map[string]MeterTotal, error) {
	rows, err := s.conn.Query(ctx, "SELECT meter_id, count(), sum(kwh) FROM "+s.db+".readings FINAL GROUP BY meter_id")
	if err != nil {
		return nil, fmt.Errorf("cannot sum energy per meter: %w", err)
	}
	defer rows.Close()
	out := map[string]MeterTotal{}
	for rows.Next() {
		var id string
		var t MeterTotal
		if err := rows.Scan(&id, &t.Rows, &t.KWh); err != nil {
			return nil, err
		}
		out[id] = t
	}
	return out, rows.Err()
}

// MeterTotal is one meter's distinct readings and energy.
type MeterTotal struct {
	Rows uint64
	KWh  float64
}

// TableCounts returns the number of distinct latest keys in each input table
// and of rejects.
func (s *Store) TableCounts(ctx context.Context) (map[string]uint64, error) {
	q := map[string]string{
		"licenses":  "SELECT count() FROM (SELECT license_id, updated_at FROM " + s.db + ".licenses FINAL)",
		"rigs":      "SELECT count() FROM (SELECT rig_id, updated_at FROM " + s.db + ".rigs FINAL)",
		"meters":    "SELECT count() FROM (SELECT meter_id, updated_at FROM " + s.db + ".meters FINAL)",
		"readings":  "SELECT count() FROM " + s.db + ".readings FINAL",
		"purchases": "SELECT count() FROM " + s.db + ".purchases FINAL",
		"rejects":   "SELECT count() FROM " + s.db + ".rejects FINAL",
	}
	out := map[string]uint64{}
	for name, query := range q {
		var n uint64
		if err := s.conn.QueryRow(ctx, query).Scan(&n); err != nil {
			return nil, fmt.Errorf("cannot count %s: %w", name, err)
		}
		out[name] = n
	}
	return out, nil
}

// RejectReasons counts rejects by stream and field.
func (s *Store) RejectReasons(ctx context.Context) (map[string]uint64, error) {
	rows, err := s.conn.Query(ctx, "SELECT stream, field, count() FROM "+s.db+".rejects FINAL GROUP BY stream, field")
	if err != nil {
		return nil, fmt.Errorf("cannot count rejects: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var st, f string
		var n uint64
		if err := rows.Scan(&st, &f, &n); err != nil {
			return nil, err
		}
		out[st+"/"+f] = n
	}
	return out, rows.Err()
}
