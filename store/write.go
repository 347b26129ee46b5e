package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// WriteBatch inserts every record and reject of b, one INSERT per table.
// It is idempotent in effect: writing the same batch again (a retry after a
// failure, a redelivery) changes no query result, since every table collapses
// versions of a key.
func (s *Store) WriteBatch(ctx context.Context, b *schemas.Batch) error {
	if len(b.Licenses) > 0 {
		if err := s.insert(ctx, "licenses", "license_id, operator_id, operator_name, status, valid_from, valid_to, licensed_capacity_kw, updated_at, deleted, version", len(b.Licenses), func(i int) []any {
			l := &b.Licenses[i]
			return []any{l.LicenseID, l.OperatorID, l.OperatorName, l.Status, l.ValidFrom, l.ValidTo, l.LicensedCapacityKW, l.UpdatedAt, boolU8(l.Deleted), l.Version}
		}); err != nil {
			return err
		}
	}
	if len(b.Meters) > 0 {
		if err := s.insert(ctx, "meters", "meter_id, feeder_id, role, class, site_id, oblast, updated_at, deleted, version", len(b.Meters), func(i int) []any {
			m := &b.Meters[i]
			return []any{m.MeterID, m.FeederID, m.Role, m.Class, m.SiteID, m.Oblast, m.UpdatedAt, boolU8(m.Deleted), m.Version}
		}); err != nil {
			return err
		}
	}
	if len(b.Rigs) > 0 {
		if err := s.insert(ctx, "rigs", "rig_id, serial, model, rated_power_w, hashrate_ths, operator_id, license_id, site_id, status, updated_at, deleted, version", len(b.Rigs), func(i int) []any {
			r := &b.Rigs[i]
			return []any{r.RigID, r.Serial, r.Model, r.RatedPowerW, r.HashrateTHs, r.OperatorID, r.LicenseID, r.SiteID, r.Status, r.UpdatedAt, boolU8(r.Deleted), r.Version}
		}); err != nil {
			return err
		}
	}
	if len(b.Purchases) > 0 {
		if err := s.insert(ctx, "purchases", "tx_id, operator_id, site_id, mwh, price_kzt_per_mwh, ts, version", len(b.Purchases), func(i int) []any {
			p := &b.Purchases[i]
			return []any{p.TxID, p.OperatorID, p.SiteID, p.MWh, p.PriceKZTPerMWh, p.TS, p.Version}
		}); err != nil {
			return err
		}
	}
	if len(b.Readings) > 0 {
		if err := s.insertReadings(ctx, b.Readings); err != nil {
			return err
		}
	}
	if len(b.Rejects) > 0 {
		if err := s.insert(ctx, "rejects", "stream, source, partition, offset, line, field, rule, reason, raw, raw_size, raw_sha256, received_at", len(b.Rejects), func(i int) []any {
			r := &b.Rejects[i]
			return []any{string(r.Stream), r.Source, r.Partition, r.Offset, r.Line, r.Field, r.Rule, r.Reason, string(r.Raw), r.RawSize, r.RawSHA256, r.ReceivedAt}
		}); err != nil {
			return err
		}
	}
	return nil
}

func boolU8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func (s *Store) insert(ctx context.Context, table, cols string, n int, row func(i int) []any) error {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+"."+table+" ("+cols+")")
	if err != nil {
		return fmt.Errorf("cannot prepare insert of %d rows into %s: %w", n, table, err)
	}
	defer batch.Abort()
	for i := 0; i < n; i++ {
		if err := batch.Append(row(i)...); err != nil {
			return fmt.Errorf("cannot append row %d for %s: %w", i, table, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("cannot insert %d rows into %s: %w", n, table, err)
	}
	return nil
}

// insertReadings appends column by column: the hot path of ingest.
func (s *Store) insertReadings(ctx context.Context, rs []schemas.Reading) error {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".readings (meter_id, ts, kwh, interval_s, version)")
	if err != nil {
		return fmt.Errorf("cannot prepare insert of %d readings: %w", len(rs), err)
	}
	defer batch.Abort()
	ids := make([]string, len(rs))
	ts := make([]time.Time, len(rs))
	kwh := make([]float64, len(rs))
	iv := make([]uint32, len(rs))
	ver := make([]uint64, len(rs))
	for i := range rs {
		ids[i], ts[i], kwh[i], iv[i], ver[i] = rs[i].MeterID, rs[i].TS, rs[i].KWh, uint32(rs[i].IntervalS), rs[i].Version
	}
	for i, col := range []any{ids, ts, kwh, iv, ver} {
		if err := batch.Column(i).Append(col); err != nil {
			return fmt.Errorf("cannot append readings column %d: %w", i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("cannot insert %d readings: %w", len(rs), err)
	}
	return nil
}

// WriteAlerts upserts alerts: the row with the highest version of an
// alert_id wins, so an updated finding replaces its earlier row.
func (s *Store) WriteAlerts(ctx context.Context, alerts []schemas.Alert, version uint64) error {
	if len(alerts) == 0 {
		return nil
	}
	return s.insert(ctx, "alerts", "alert_id, kind, severity, entity_type, entity_id, meter_id, feeder_id, site_id, operator_id, rig_id, license_id, tx_id, oblast, window_start, window_end, detected_at, observed_kwh, expected_kwh, excess_kwh, estimated_value_kzt, score, summary, evidence, status, note, created_at, updated_at, version", len(alerts), func(i int) []any {
		a := &alerts[i]
		ev, _ := json.Marshal(a.Evidence)
		return []any{a.AlertID, a.Kind, a.Severity, a.EntityType, a.EntityID, a.MeterID, a.FeederID, a.SiteID, a.OperatorID, a.RigID, a.LicenseID, a.TxID, a.Oblast,
			a.WindowStart, a.WindowEnd, a.DetectedAt, a.ObservedKWh, a.ExpectedKWh, a.ExcessKWh, a.EstimatedValueKZT, a.Score, a.Summary, string(ev), a.Status, a.Note, a.CreatedAt, a.UpdatedAt, version}
	})
}
