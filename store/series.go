package store

import (
	"context"
	"fmt"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// MeterReadings streams the latest version of every reading with ts in
// (from, to], grouped per meter and sorted by time, to fn. The slices are
// reused between calls: fn must copy what it keeps.
func (s *Store) MeterReadings(ctx context.Context, from, to time.Time, fn func(meterID string, ts []time.Time, kwh []float64, intervalS []int32) error) error {
	args := []any{from.UTC(), to.UTC()}
	if to.Sub(from) <= unmergedReadMax {
		return s.meterReadings(ctx, "SELECT meter_id, ts, kwh, interval_s FROM "+s.db+".readings WHERE ts > ? AND ts <= ? ORDER BY meter_id, ts, version", args, fn)
	}
	return s.meterReadings(ctx, "SELECT meter_id, ts, k, iv FROM "+s.latestReadings("")+" ORDER BY meter_id, ts", args, fn)
}

// unmergedReadMax is the longest span MeterReadings reads without FINAL:
// live detection's reads of its newest hours. FINAL merges every part that
// overlaps the span whole, and under the (meter_id, ts) key a merged part
// holds hours of every meter: at the end of a national day one hour read
// with FINAL took 11-14 s on 18.16 (a 64M-row part spanning 18 hours),
// against 2.3-3.6 s sorted without it (3.6M rows). Such a span is read
// with every stored version, sorted so that a reading's versions come
// together, oldest first: the last of them is its latest, which FINAL
// would keep (versions grow with every delivery; two equal ones are one
// record delivered twice). A span of days is read with FINAL, which
// streams where sorting would hold them all.
const unmergedReadMax = 6 * time.Hour

// MeterReadingsOf is MeterReadings for the given meters only.
func (s *Store) MeterReadingsOf(ctx context.Context, meterIDs []string, from, to time.Time, fn func(meterID string, ts []time.Time, kwh []float64, intervalS []int32) error) error {
	if len(meterIDs) == 0 {
		return nil
	}
	return s.forMeterChunks(meterIDs, func(cond string, args []any) error {
		return s.meterReadings(ctx, "SELECT meter_id, ts, k, iv FROM "+s.latestReadings(cond)+" ORDER BY meter_id, ts", append([]any{from.UTC(), to.UTC()}, args...), fn)
	})
}

// latestReadings is a subquery of the latest version of each reading with
// ts in (?, ?] (and cond, an "AND meter_id IN (...)" with its own
// arguments), columns meter_id, ts, k (kWh) and iv (interval_s). For the
// given meters it keeps each reading's latest version by argMax over a
// GROUP BY: on 18.16 FINAL reads a few meters' granules in every part ten
// to twenty times slower (a feeder page's 50 meters: 0.32-0.57 s against
// 0.02 s). For every meter it is FINAL, which streams.
func (s *Store) latestReadings(cond string) string {
	if cond == "" {
		return "(SELECT meter_id, ts, kwh AS k, interval_s AS iv FROM " + s.db + ".readings FINAL WHERE ts > ? AND ts <= ?)"
	}
	return "(SELECT meter_id, ts, argMax(kwh, version) AS k, argMax(interval_s, version) AS iv FROM " + s.db +
		".readings WHERE ts > ? AND ts <= ?" + cond + " GROUP BY meter_id, ts)"
}

// meterReadings runs query, whose rows (meter id, time, kWh, interval) come
// sorted by meter and time, args[0] and args[1] the span's ends, and hands
// fn each meter's readings; of rows with one meter and time, the last
// stands (a sorted read of every version).
func (s *Store) meterReadings(ctx context.Context, query string, args []any, fn func(meterID string, ts []time.Time, kwh []float64, intervalS []int32) error) error {
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("cannot read readings %s..%s: %w", args[0].(time.Time).Format(time.RFC3339), args[1].(time.Time).Format(time.RFC3339), err)
	}
	defer rows.Close()
	var (
		cur string
		ts  []time.Time
		kwh []float64
		ivs []int32
		id  string
		t   time.Time
		k   float64
		iv  uint32
	)
	for rows.Next() {
		if err := rows.Scan(&id, &t, &k, &iv); err != nil {
			return err
		}
		switch {
		case id != cur:
			if len(ts) > 0 {
				if err := fn(cur, ts, kwh, ivs); err != nil {
					return err
				}
			}
			ts, kwh, ivs = ts[:0], kwh[:0], ivs[:0]
			cur = id
		case len(ts) > 0 && t.Equal(ts[len(ts)-1]):
			// a later version of the reading before: it replaces it
			kwh[len(kwh)-1], ivs[len(ivs)-1] = k, int32(iv)
			continue
		}
		ts, kwh, ivs = append(ts, t.UTC()), append(kwh, k), append(ivs, int32(iv))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(ts) > 0 {
		return fn(cur, ts, kwh, ivs)
	}
	return nil
}

// PurchasesBetween returns the latest version of every purchase with ts in
// [from, to), in time order: the detector's view.
func (s *Store) PurchasesBetween(ctx context.Context, from, to time.Time) ([]schemas.Purchase, error) {
	return s.purchases(ctx, "ts >= ? AND ts < ?", from.UTC(), to.UTC())
}

// purchases reads the latest version of the purchases matching where (with
// its bound args), in time order.
func (s *Store) purchases(ctx context.Context, where string, args ...any) ([]schemas.Purchase, error) {
	rows, err := s.conn.Query(ctx, "SELECT tx_id, operator_id, site_id, mwh, price_kzt_per_mwh, ts FROM "+s.db+".purchases FINAL WHERE "+where+" ORDER BY ts, tx_id", args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read purchases: %w", err)
	}
	defer rows.Close()
	var out []schemas.Purchase
	for rows.Next() {
		var p schemas.Purchase
		if err := rows.Scan(&p.TxID, &p.OperatorID, &p.SiteID, &p.MWh, &p.PriceKZTPerMWh, &p.TS); err != nil {
			return nil, fmt.Errorf("cannot read purchases: %w", err)
		}
		p.TS = p.TS.UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// ReadingSpan returns the earliest and latest reading time stored.
func (s *Store) ReadingSpan(ctx context.Context) (from, to time.Time, err error) {
	// The parts' own min/max index of ts (the partition key's column)
	// answers without reading the table: live detection asks every tick,
	// and every page anchors its window on the newest reading.
	src, table := "system.parts", "readings"
	if s.cluster != "" {
		src, table = "cluster('"+s.cluster+"', system, parts)", "readings_local"
	}
	var n uint64
	err = s.conn.QueryRow(ctx, "SELECT sum(rows), min(min_time), max(max_time) FROM "+src+" WHERE database = ? AND table = ? AND active AND rows > 0",
		s.db, table).Scan(&n, &from, &to)
	if err == nil && n == 0 {
		// No parts: the table is empty, or not there at all, which the
		// parts cannot tell apart but the table can (cheaply, being empty).
		err = s.conn.QueryRow(ctx, "SELECT count(), min(ts), max(ts) FROM "+s.db+".readings").Scan(&n, &from, &to)
	}
	if err != nil {
		return from, to, fmt.Errorf("cannot read the span of readings: %w", err)
	}
	if n == 0 {
		return time.Time{}, time.Time{}, nil
	}
	return from.UTC(), to.UTC(), nil
}

// RegistryLatest returns the newest updated_at among the stored licences,
// rigs and meters, or the zero time when there are none.
func (s *Store) RegistryLatest(ctx context.Context) (time.Time, error) {
	var t time.Time
	var n uint64
	q := "SELECT max(t), sum(n) FROM (" +
		"SELECT max(updated_at) AS t, count() AS n FROM " + s.db + ".licenses UNION ALL " +
		"SELECT max(updated_at) AS t, count() AS n FROM " + s.db + ".rigs UNION ALL " +
		"SELECT max(updated_at) AS t, count() AS n FROM " + s.db + ".meters) WHERE n > 0"
	if err := s.conn.QueryRow(ctx, q).Scan(&t, &n); err != nil {
		return time.Time{}, fmt.Errorf("cannot read the newest registry record: %w", err)
	}
	if n == 0 {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// Watermark returns the event time that nearly every meter heard from in
// the day before latest has reported up to: the 10th percentile of the
// meters' newest readings. Partitions are consumed independently, so the
// newest stored reading alone can run hours ahead of most meters; a meter
// that has gone quiet must not hold time back either.
func (s *Store) Watermark(ctx context.Context, latest time.Time) (time.Time, error) {
	var wm time.Time
	err := s.conn.QueryRow(ctx, "SELECT quantileExact(0.1)(m) FROM (SELECT meter_id, max(ts) AS m FROM "+s.db+".readings WHERE ts > ? GROUP BY meter_id)",
		latest.Add(-24*time.Hour).UTC()).Scan(&wm)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot compute the event-time watermark: %w", err)
	}
	return wm.UTC(), nil
}

// HasReadings reports whether any reading is stored, reading one row at
// most.
func (s *Store) HasReadings(ctx context.Context) (bool, error) {
	rows, err := s.conn.Query(ctx, "SELECT 1 FROM "+s.db+".readings LIMIT 1")
	if err != nil {
		return false, fmt.Errorf("cannot read readings: %w", err)
	}
	defer rows.Close()
	found := rows.Next()
	return found, rows.Err()
}

// ReadingRows returns how many reading rows are stored, before
// ReplacingMergeTree has dropped the older versions of a key (its merges
// do that in their own time): at least the number of distinct readings, at
// most the number inserted.
func (s *Store) ReadingRows(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+".readings").Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot count readings: %w", err)
	}
	return n, nil
}
