package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/rigwatch/rigwatch/schemas"
)

// LoadBatch is how many records LoadRegistry hands to the Index at a time:
// large enough that ApplyRigs rebuilds a site's capacity once per batch
// rather than record by record, small enough to bound the memory a batch
// holds.
const LoadBatch = 50_000

// RegistrySink receives registry records as LoadRegistry reads them, in
// batches it must not keep (they are reused). An error it returns about
// records it refuses does not stop the load. *registry.Index is one; store
// does not depend on it.
type RegistrySink interface {
	ApplyLicenses([]schemas.License) error
	ApplyMeters([]schemas.Meter) error
	ApplyRigs([]schemas.Rig) error
}

// LoadRegistry streams every stored version of every licence, meter and rig
// into sink: licences and meters first, so that the rigs find them. FINAL
// collapses redeliveries of a version (same key and updated_at, the highest
// ingest version kept), and rows come in updated_at order, the order in
// which the Index applies them fastest. Reading the next batch overlaps
// applying the previous one. Tombstones (deleted = 1) are applied as
// deletions from their updated_at on.
//
// Records the sink refuses are skipped, everything else is loaded, and the
// returned error then wraps the sink's first refusal (for an Index, an
// error wrapping registry.ErrInvalidInput); any other error means the
// registry could not be read.
func (s *Store) LoadRegistry(ctx context.Context, sink RegistrySink) error {
	return s.LoadRegistryScope(ctx, sink, Scope{})
}

// A Scope narrows LoadRegistry to the records one look-up needs: every
// licence (there are tens), and every version of the rigs and meters it
// names, so that whatever the Index answers about them is what a full load
// would answer. The zero Scope names everything.
type Scope struct {
	rigs, meters *filter // nil: all
}

// filter is a condition on a table, {db} standing for the database. Its
// subqueries say GLOBAL IN: in cluster mode a plain IN over a Distributed
// table inside a query over another is refused (docs/cluster.md); on one
// server GLOBAL IN is IN.
type filter struct {
	where string
	args  []any
}

var noRows = &filter{where: "0"}

// RigScope names the rigs with id or serial q, and no meters.
func RigScope(q string) Scope {
	return Scope{rigs: &filter{"rig_id GLOBAL IN (SELECT rig_id FROM {db}.rigs WHERE rig_id = ? OR serial = ?)", []any{q, q}}, meters: noRows}
}

// SiteScope names every rig and meter that was ever at site.
func SiteScope(site string) Scope {
	return Scope{
		rigs:   &filter{"rig_id GLOBAL IN (SELECT rig_id FROM {db}.rigs WHERE site_id = ?)", []any{site}},
		meters: &filter{"meter_id GLOBAL IN (SELECT meter_id FROM {db}.meters WHERE site_id = ?)", []any{site}},
	}
}

// OperatorScope names every rig that ever belonged to operator, and no
// meters.
func OperatorScope(operator string) Scope {
	return Scope{rigs: &filter{"rig_id GLOBAL IN (SELECT rig_id FROM {db}.rigs WHERE operator_id = ?)", []any{operator}}, meters: noRows}
}

// clause renders f as a WHERE clause over database db, with its arguments.
func (f *filter) clause(db string) (string, []any) {
	if f == nil {
		return "", nil
	}
	return " WHERE " + strings.ReplaceAll(f.where, "{db}", db), f.args
}

// LoadRegistryScope is LoadRegistry narrowed to scope.
func (s *Store) LoadRegistryScope(ctx context.Context, sink RegistrySink, scope Scope) error {
	meterWhere, meterArgs := scope.meters.clause(s.db)
	rigWhere, rigArgs := scope.rigs.clause(s.db)
	var refused []error
	note := func(err error) {
		if err != nil {
			refused = append(refused, err)
		}
	}
	err := load(ctx, s, "licences",
		"SELECT license_id, operator_id, operator_name, status, valid_from, valid_to, licensed_capacity_kw, updated_at, deleted, version FROM "+s.db+".licenses FINAL ORDER BY updated_at",
		func(rows driver.Rows, l *schemas.License) error {
			var del uint8
			if err := rows.Scan(&l.LicenseID, &l.OperatorID, &l.OperatorName, &l.Status, &l.ValidFrom, &l.ValidTo, &l.LicensedCapacityKW, &l.UpdatedAt, &del, &l.Version); err != nil {
				return err
			}
			l.ValidFrom, l.ValidTo, l.UpdatedAt, l.Deleted = fromDB(l.ValidFrom), fromDB(l.ValidTo), fromDB(l.UpdatedAt), del != 0
			return nil
		},
		func(ls []schemas.License) { note(sink.ApplyLicenses(ls)) })
	if err != nil {
		return err
	}
	err = load(ctx, s, "meters",
		"SELECT meter_id, feeder_id, role, class, site_id, oblast, updated_at, deleted, version FROM "+s.db+".meters FINAL"+meterWhere+" ORDER BY updated_at",
		func(rows driver.Rows, m *schemas.Meter) error {
			var del uint8
			if err := rows.Scan(&m.MeterID, &m.FeederID, &m.Role, &m.Class, &m.SiteID, &m.Oblast, &m.UpdatedAt, &del, &m.Version); err != nil {
				return err
			}
			m.UpdatedAt, m.Deleted = fromDB(m.UpdatedAt), del != 0
			return nil
		},
		func(ms []schemas.Meter) { note(sink.ApplyMeters(ms)) }, meterArgs...)
	if err != nil {
		return err
	}
	err = load(ctx, s, "rigs",
		"SELECT rig_id, serial, model, rated_power_w, hashrate_ths, operator_id, license_id, site_id, status, updated_at, deleted, version FROM "+s.db+".rigs FINAL"+rigWhere+" ORDER BY updated_at",
		func(rows driver.Rows, r *schemas.Rig) error {
			var del uint8
			if err := rows.Scan(&r.RigID, &r.Serial, &r.Model, &r.RatedPowerW, &r.HashrateTHs, &r.OperatorID, &r.LicenseID, &r.SiteID, &r.Status, &r.UpdatedAt, &del, &r.Version); err != nil {
				return err
			}
			r.UpdatedAt, r.Deleted = fromDB(r.UpdatedAt), del != 0
			return nil
		},
		func(rs []schemas.Rig) { note(sink.ApplyRigs(rs)) }, rigArgs...)
	if err != nil {
		return err
	}
	if len(refused) > 0 {
		return fmt.Errorf("loaded the registry from %s, but the sink refused records in %d batches, first: %w", s.db, len(refused), refused[0])
	}
	return nil
}

// fromDB turns a stored DateTime into the contract's time: UTC, and the
// zero time for the epoch, which is how a zero time.Time is stored.
func fromDB(t time.Time) time.Time {
	if t.Unix() == 0 {
		return time.Time{}
	}
	return t.UTC()
}

// load runs query and hands its rows to apply in batches of LoadBatch,
// scanning the next batch while apply works on the previous one. Batches
// are reused, so apply must not keep the slice.
func load[T any](ctx context.Context, s *Store, what, query string, scan func(driver.Rows, *T) error, apply func([]T), args ...any) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("cannot read %s from %s: %w", what, s.db, err)
	}
	full := make(chan []T, 1)
	free := make(chan []T, 2)
	free <- make([]T, 0, LoadBatch)
	free <- make([]T, 0, LoadBatch)
	scanErr := make(chan error, 1)
	go func() {
		defer close(full)
		defer rows.Close()
		buf := <-free
		var zero T
		for rows.Next() {
			buf = append(buf, zero)
			if err := scan(rows, &buf[len(buf)-1]); err != nil {
				scanErr <- fmt.Errorf("cannot read a row of %s from %s: %w", what, s.db, err)
				return
			}
			if len(buf) == LoadBatch {
				full <- buf
				select {
				case buf = <-free:
				case <-ctx.Done():
					scanErr <- ctx.Err()
					return
				}
			}
		}
		if err := rows.Err(); err != nil {
			scanErr <- fmt.Errorf("cannot read %s from %s: %w", what, s.db, err)
			return
		}
		if len(buf) > 0 {
			full <- buf
		}
		scanErr <- nil
	}()
	for buf := range full {
		apply(buf)
		clear(buf) // drop the strings, so the index's interned copies are the only ones left
		free <- buf[:0]
	}
	return <-scanErr
}
