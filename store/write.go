package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/rigwatch/rigwatch/schemas"
)

// WriteBatch inserts every record and reject of b, one INSERT per table.
// It is idempotent in effect: writing the same batch again (a retry after a
// failure, a redelivery) changes no query result, since every table collapses
// versions of a key.
func (s *Store) WriteBatch(ctx context.Context, b *schemas.Batch) error {
	if err := s.writeRecords(ctx, b); err != nil {
		return err
	}
	if len(b.Readings) > 0 {
		w := s.Inserter()
		defer w.Abort()
		if err := w.writeReadings(ctx, b.Readings); err != nil {
			return err
		}
		if err := w.Flush(ctx); err != nil {
			return err
		}
	}
	return s.writeRejects(ctx, b)
}

// writeRecords inserts b's registry records and purchases, one INSERT per
// table.
func (s *Store) writeRecords(ctx context.Context, b *schemas.Batch) error {
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
	return nil
}

// writeRejects inserts b's rejects.
func (s *Store) writeRejects(ctx context.Context, b *schemas.Batch) error {
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
	bctx, detach := batchContext(ctx)
	defer detach()
	batch, err := s.conn.PrepareBatch(bctx, "INSERT INTO "+s.db+"."+table+" ("+cols+")")
	if err != nil {
		return fmt.Errorf("cannot prepare insert of %d rows into %s: %w", n, table, batchErr(ctx, err))
	}
	defer batch.Abort()
	for i := 0; i < n; i++ {
		if err := batch.Append(row(i)...); err != nil {
			return fmt.Errorf("cannot append row %d for %s: %w", i, table, err)
		}
	}
	err = batch.Send()
	detach()
	if err != nil {
		return fmt.Errorf("cannot insert %d rows into %s: %w", n, table, batchErr(ctx, err))
	}
	return nil
}

// batchContext returns the context to prepare a batch with: it ends when
// ctx ends, until detach is called, and never after. clickhouse-go's
// Send watches the batch's context from a goroutine of its own and closes
// the connection when the context ends. On a loaded machine that
// goroutine may first run after Send has returned and the connection has
// gone back to the pool; if ctx has ended by then (a deferred cancel
// does, at once), it may close the connection under the next query that
// took it ("use of closed network connection", seen in a full test run
// on this machine). Call detach as soon as Send returns.
func batchContext(ctx context.Context) (context.Context, func()) {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	return bctx, func() { stop() }
}

// batchErr is err, or why ctx ended when it has: a batch whose context
// ended fails on its closed connection.
func batchErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	}
	return err
}

// readingsTable is where readings go, and readingColumns their columns in
// the order Inserter appends them.
const (
	readingsTable  = "readings"
	readingColumns = "meter_id, ts, kwh, interval_s, version"
)

// Inserter writes batches through an INSERT it keeps open across them:
// each batch's readings go as one block of the open INSERT, and ClickHouse
// squashes the blocks of one INSERT into parts of up to a million rows
// (min_insert_block_size_rows), where an INSERT per batch makes a part per
// batch for the server to merge later. A batch's other records, rare and
// small, are inserted at once. What Write sent is stored once Flush returns
// nil, and not before; after an error nothing sent since the last Flush can
// be taken as stored. An Inserter is not safe for concurrent use; a Store
// hands out any number.
type Inserter struct {
	s      *Store
	batch  driver.Batch // the open readings INSERT; nil when none
	detach func()       // ends the batch's tie to its context; see batchContext
	rows   int          // readings sent into it
	// Column buffers, reused from block to block.
	ids []string
	ts  []time.Time
	kwh []float64
	iv  []uint32
	ver []uint64
}

// Inserter returns a new Inserter writing to s.
func (s *Store) Inserter() *Inserter { return &Inserter{s: s} }

// Write sends b: its readings as a block of the open INSERT (opening one
// when none is), its other records and rejects as INSERTs of their own. On
// error the open INSERT is dropped.
func (w *Inserter) Write(ctx context.Context, b *schemas.Batch) error {
	if err := w.s.writeRecords(ctx, b); err != nil {
		w.Abort()
		return err
	}
	if err := w.writeReadings(ctx, b.Readings); err != nil {
		return err
	}
	if err := w.s.writeRejects(ctx, b); err != nil {
		w.Abort()
		return err
	}
	return nil
}

// Rows returns how many readings were sent since the last Flush.
func (w *Inserter) Rows() int { return w.rows }

// Flush ends the open INSERT: when it returns nil, every reading sent since
// the last Flush is stored.
func (w *Inserter) Flush(ctx context.Context) error {
	if w.batch == nil {
		return nil
	}
	n := w.rows
	err := w.batch.Send() // the block is empty: this ends the INSERT
	w.detach()
	w.batch, w.rows = nil, 0
	if err != nil {
		return fmt.Errorf("cannot insert %d readings: %w", n, batchErr(ctx, err))
	}
	return nil
}

// Abort drops the open INSERT, if any, closing its connection. Safe to
// call at any time.
func (w *Inserter) Abort() {
	if w.batch != nil {
		_ = w.batch.Abort()
		w.detach()
		w.batch, w.rows = nil, 0
	}
}

// writeReadings sends rs as one block of the open INSERT, column by
// column: the hot path of ingest.
func (w *Inserter) writeReadings(ctx context.Context, rs []schemas.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	if w.batch == nil {
		bctx, detach := batchContext(ctx)
		batch, err := w.s.conn.PrepareBatch(bctx, "INSERT INTO "+w.s.db+"."+readingsTable+" ("+readingColumns+")")
		if err != nil {
			detach()
			return fmt.Errorf("cannot prepare insert of readings: %w", batchErr(ctx, err))
		}
		w.batch, w.detach = batch, detach
	}
	w.ids, w.ts, w.kwh, w.iv, w.ver = w.ids[:0], w.ts[:0], w.kwh[:0], w.iv[:0], w.ver[:0]
	for i := range rs {
		r := &rs[i]
		w.ids = append(w.ids, r.MeterID)
		w.ts = append(w.ts, r.TS)
		w.kwh = append(w.kwh, r.KWh)
		w.iv = append(w.iv, uint32(r.IntervalS))
		w.ver = append(w.ver, r.Version)
	}
	for i, col := range []any{w.ids, w.ts, w.kwh, w.iv, w.ver} {
		if err := w.batch.Column(i).Append(col); err != nil {
			w.Abort()
			return fmt.Errorf("cannot append readings column %d: %w", i, err)
		}
	}
	if err := w.batch.Flush(); err != nil {
		w.Abort()
		return fmt.Errorf("cannot send %d readings: %w", len(rs), err)
	}
	w.rows += len(rs)
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
