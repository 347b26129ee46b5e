package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// Errors of the alert lifecycle, checked with errors.Is.
var (
	// ErrNotFound: no alert (token, ...) with that id.
	ErrNotFound = errors.New("not found")
	// ErrTransition: the status change is not allowed from the alert's
	// current status.
	ErrTransition = errors.New("status change not allowed")
)

// People's state of an alert (status, note) lives in alert_events, an
// append-only log no one rewrites; the detector's finding in the alerts
// rows. Every read joins the two (alertsFrom), so no process's write can
// take away another's: an acknowledgement made on one process stands
// whatever the leader's detector writes meanwhile, with no lock shared
// between processes. The alerts rows carry a copy of people's state, kept
// in step by every write and by FoldAlertState, for those who query the
// table directly.

var (
	verMu   sync.Mutex
	lastVer uint64
)

// nextVersion returns a version above every version this process has
// handed out and above floor: wall-clock nanoseconds, so versions also grow
// across restarts.
func nextVersion(floor uint64) uint64 {
	verMu.Lock()
	defer verMu.Unlock()
	v := uint64(time.Now().UnixNano())
	if v <= lastVer {
		v = lastVer + 1
	}
	if v <= floor {
		v = floor + 1
	}
	lastVer = v
	return v
}

const alertCols = "alert_id, kind, severity, entity_type, entity_id, meter_id, feeder_id, site_id, operator_id, rig_id, license_id, tx_id, oblast, window_start, window_end, detected_at, observed_kwh, expected_kwh, excess_kwh, estimated_value_kzt, score, summary, evidence, status, note, created_at, updated_at, version, closed"

// statusRanks orders the statuses people move an alert through; the state
// of an alert is the furthest it reached, so concurrent changes commute and
// a stale copy never takes a status back.
const statusRanks = "['open', 'acknowledged', 'resolved']"

// alertsFrom returns a query of the alerts rows that inner (a WHERE clause
// on the alerts table, or "") selects, in the order of alertCols, each
// joined with people's state from alert_events: its furthest status, the
// note of the latest event that reached it, and the time of its last
// event, as cur_status, cur_note and cur_updated_at in place of the row's
// own status, note and updated_at. The alerts side is a subquery, so in
// cluster mode the join runs on the server that took the query and needs
// no GLOBAL. Conditions and orders put after it may use cur_status,
// cur_note, cur_updated_at, the row's status and note, and h_n (the
// number of events).
func (s *Store) alertsFrom(inner string) string {
	return "SELECT alert_id, kind, severity, entity_type, entity_id, meter_id, feeder_id, site_id, operator_id, rig_id, license_id, tx_id, oblast," +
		" window_start, window_end, detected_at, observed_kwh, expected_kwh, excess_kwh, estimated_value_kzt, score, summary, evidence," +
		" arrayElement(" + statusRanks + ", toUInt8(greatest(h_rank, indexOf(" + statusRanks + ", status)))) AS cur_status," +
		" if(h_n > 0, h_note, note) AS cur_note, created_at, greatest(updated_at, h_ts) AS cur_updated_at, version, closed" +
		" FROM (SELECT " + alertCols + " FROM " + s.db + ".alerts FINAL" + inner + ")" +
		" ANY LEFT JOIN (SELECT alert_id, max(indexOf(" + statusRanks + ", to_status)) AS h_rank," +
		" argMax(note, (indexOf(" + statusRanks + ", to_status), ts, seq)) AS h_note, max(ts) AS h_ts, count() AS h_n" +
		" FROM " + s.db + ".alert_events GROUP BY alert_id) USING alert_id"
}

// storedAlert is an alert row with its version.
type storedAlert struct {
	schemas.Alert
	version uint64
}

func (s *Store) scanAlerts(ctx context.Context, query string, args ...any) ([]storedAlert, error) {
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read alerts: %w", err)
	}
	defer rows.Close()
	var out []storedAlert
	for rows.Next() {
		var a storedAlert
		var ev string
		var closed uint8
		if err := rows.Scan(&a.AlertID, &a.Kind, &a.Severity, &a.EntityType, &a.EntityID, &a.MeterID, &a.FeederID, &a.SiteID, &a.OperatorID, &a.RigID, &a.LicenseID, &a.TxID, &a.Oblast,
			&a.WindowStart, &a.WindowEnd, &a.DetectedAt, &a.ObservedKWh, &a.ExpectedKWh, &a.ExcessKWh, &a.EstimatedValueKZT, &a.Score, &a.Summary, &ev, &a.Status, &a.Note, &a.CreatedAt, &a.UpdatedAt, &a.version, &closed); err != nil {
			return nil, fmt.Errorf("cannot read alerts: %w", err)
		}
		a.Closed = closed != 0
		a.WindowStart, a.WindowEnd, a.DetectedAt = fromDB(a.WindowStart), fromDB(a.WindowEnd), fromDB(a.DetectedAt)
		a.CreatedAt, a.UpdatedAt = fromDB(a.CreatedAt), fromDB(a.UpdatedAt)
		if ev != "" {
			if err := json.Unmarshal([]byte(ev), &a.Evidence); err != nil {
				a.Evidence = map[string]any{"unparsed": ev}
			}
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *Store) writeAlertRows(ctx context.Context, rows []storedAlert) error {
	if len(rows) == 0 {
		return nil
	}
	return s.insert(ctx, "alerts", alertCols, len(rows), func(i int) []any {
		a := &rows[i]
		ev, err := json.Marshal(a.Evidence)
		if err != nil || a.Evidence == nil {
			ev = []byte("{}")
		}
		var closed uint8
		if a.Closed {
			closed = 1
		}
		return []any{a.AlertID, a.Kind, a.Severity, a.EntityType, a.EntityID, a.MeterID, a.FeederID, a.SiteID, a.OperatorID, a.RigID, a.LicenseID, a.TxID, a.Oblast,
			a.WindowStart, a.WindowEnd, a.DetectedAt, a.ObservedKWh, a.ExpectedKWh, a.ExcessKWh, a.EstimatedValueKZT, a.Score, a.Summary, string(ev), a.Status, a.Note, a.CreatedAt, a.UpdatedAt, a.version, closed}
	})
}

// placeholders returns "?, ?, ?" for n values: lists of ids bind one value
// per placeholder, never by concatenation.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anyStrings(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// alertsByID reads the current state of the given alerts, in chunks.
func (s *Store) alertsByID(ctx context.Context, ids []string) (map[string]storedAlert, error) {
	out := make(map[string]storedAlert, len(ids))
	const chunk = 1000
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		part := ids[:n]
		ids = ids[n:]
		rows, err := s.scanAlerts(ctx, s.alertsFrom(" WHERE alert_id IN ("+placeholders(len(part))+")"), anyStrings(part)...)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out[r.AlertID] = r
		}
	}
	return out, nil
}

// UpsertResult is what UpsertAlertsDetail did.
type UpsertResult struct {
	// Opened holds the alerts that did not exist before.
	Opened []schemas.Alert
	// Updated holds existing alerts whose finding changed (window, figures,
	// summary, evidence or severity).
	Updated []schemas.Alert
	// Escalated holds the updated alerts that became critical: a finding
	// that grows (a theft running on) can reach critical after it opened.
	Escalated []schemas.Alert
	// Unchanged counts alerts stored exactly as given already: not rewritten.
	Unchanged int
}

// UpsertAlerts stores the detector's current findings and returns the ones
// that did not exist before. See UpsertAlertsDetail.
func (s *Store) UpsertAlerts(ctx context.Context, alerts []schemas.Alert) ([]schemas.Alert, error) {
	res, err := s.UpsertAlertsDetail(ctx, alerts)
	return res.Opened, err
}

// UpsertAlertsDetail stores the detector's current findings. A finding seen
// before (same alert_id) takes the new window, figures, summary, evidence
// and closed flag but keeps created_at and people's state, which lives
// apart (alert_events) and is read back with every alert: an acknowledged
// alert stays acknowledged whatever this writes, even when a person acts
// on another process meanwhile. An alert whose finding did not change is
// not rewritten. New alerts start open. Meant for one writer of findings
// at a time (the elected detector); people's changes may come from any
// process.
func (s *Store) UpsertAlertsDetail(ctx context.Context, alerts []schemas.Alert) (UpsertResult, error) {
	var res UpsertResult
	if len(alerts) == 0 {
		return res, nil
	}
	// The last finding of an id in the slice wins.
	byID := make(map[string]int, len(alerts))
	ids := make([]string, 0, len(alerts))
	for i := range alerts {
		if _, ok := byID[alerts[i].AlertID]; !ok {
			ids = append(ids, alerts[i].AlertID)
		}
		byID[alerts[i].AlertID] = i
	}
	old, err := s.alertsByID(ctx, ids)
	if err != nil {
		return res, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	var write []storedAlert
	for _, id := range ids {
		a := alerts[byID[id]]
		a.Evidence = normalizeEvidence(a.Evidence)
		prev, existed := old[id]
		if !existed {
			if a.Status == "" {
				a.Status = schemas.StatusOpen
			}
			if a.CreatedAt.IsZero() {
				a.CreatedAt = now
			}
			if a.UpdatedAt.IsZero() {
				a.UpdatedAt = now
			}
			write = append(write, storedAlert{Alert: a, version: nextVersion(0)})
			res.Opened = append(res.Opened, a)
			continue
		}
		// People's state as it stands now, copied into the row; should it
		// change before this row lands, reads still join the change in,
		// and FoldAlertState mends the copy.
		a.Status, a.Note, a.CreatedAt = prev.Status, prev.Note, prev.CreatedAt
		// A finding's span only grows: a later evaluation may see only its
		// tail (the registry clips violations to the window it checks).
		if !prev.WindowStart.IsZero() && prev.WindowStart.Before(a.WindowStart) {
			a.WindowStart = prev.WindowStart
		}
		if !prev.DetectedAt.IsZero() && prev.DetectedAt.Before(a.DetectedAt) {
			a.DetectedAt = prev.DetectedAt
		}
		if sameFinding(&a, &prev.Alert) {
			res.Unchanged++
			continue
		}
		a.UpdatedAt = now
		write = append(write, storedAlert{Alert: a, version: nextVersion(prev.version)})
		res.Updated = append(res.Updated, a)
		if a.Severity == schemas.SeverityCritical && prev.Severity != schemas.SeverityCritical {
			res.Escalated = append(res.Escalated, a)
		}
	}
	if err := s.writeAlertRows(ctx, write); err != nil {
		return UpsertResult{}, err
	}
	return res, nil
}

// normalizeEvidence passes evidence through JSON, as storage does, so a
// fresh finding compares equal to its stored copy.
func normalizeEvidence(ev map[string]any) map[string]any {
	if ev == nil {
		return map[string]any{}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return ev
	}
	var out map[string]any
	if json.Unmarshal(b, &out) != nil {
		return ev
	}
	return out
}

func sameFinding(a, b *schemas.Alert) bool {
	eqf := func(x, y *float64) bool {
		if x == nil || y == nil {
			return x == nil && y == nil
		}
		return *x == *y
	}
	sec := func(t time.Time) int64 { return t.Unix() }
	return a.Kind == b.Kind && a.Severity == b.Severity && a.EntityType == b.EntityType && a.EntityID == b.EntityID &&
		a.MeterID == b.MeterID && a.FeederID == b.FeederID && a.SiteID == b.SiteID && a.OperatorID == b.OperatorID &&
		a.RigID == b.RigID && a.LicenseID == b.LicenseID && a.TxID == b.TxID && a.Oblast == b.Oblast &&
		sec(a.WindowStart) == sec(b.WindowStart) && sec(a.WindowEnd) == sec(b.WindowEnd) && sec(a.DetectedAt) == sec(b.DetectedAt) &&
		eqf(a.ObservedKWh, b.ObservedKWh) && eqf(a.ExpectedKWh, b.ExpectedKWh) && eqf(a.ExcessKWh, b.ExcessKWh) &&
		eqf(a.EstimatedValueKZT, b.EstimatedValueKZT) && a.Score == b.Score && a.Summary == b.Summary &&
		a.Closed == b.Closed && reflect.DeepEqual(a.Evidence, b.Evidence)
}

// AlertFilter selects alerts. Zero fields do not filter.
type AlertFilter struct {
	Kind     string
	Severity string
	Oblast   string
	Status   string
	// EntityID matches entity_id or any of the alert's ids (meter, feeder,
	// site, operator, rig, licence, transaction).
	EntityID string
	// Since keeps alerts whose window ends at or after it.
	Since time.Time
	// Limit is the most alerts returned: zero means 100, at most MaxAlertLimit.
	Limit  int
	Offset int
	// Order is one of AlertOrders; empty means "-updated_at".
	Order string
}

// MaxAlertLimit bounds AlertFilter.Limit.
const MaxAlertLimit = 10000

// AlertOrders maps the accepted AlertFilter.Order values to ORDER BY
// clauses: sort columns come only from this list. A leading "-" means
// descending.
var AlertOrders = map[string]string{
	"score": "score ASC, alert_id", "-score": "score DESC, alert_id",
	"excess_kwh": "excess_kwh ASC, alert_id", "-excess_kwh": "excess_kwh DESC, alert_id",
	"window_end": "window_end ASC, alert_id", "-window_end": "window_end DESC, alert_id",
	"created_at": "created_at ASC, alert_id", "-created_at": "created_at DESC, alert_id",
	"updated_at": "cur_updated_at ASC, alert_id", "-updated_at": "cur_updated_at DESC, alert_id",
	"estimated_value_kzt": "estimated_value_kzt ASC, alert_id", "-estimated_value_kzt": "estimated_value_kzt DESC, alert_id",
}

// Validate checks the filter's enumerations and bounds.
func (f *AlertFilter) Validate() error {
	if f.Kind != "" && !oneOf(f.Kind, schemas.AlertKinds...) {
		return fmt.Errorf("unknown alert kind %q", f.Kind)
	}
	if f.Severity != "" && !oneOf(f.Severity, schemas.SeverityInfo, schemas.SeverityWarning, schemas.SeverityCritical) {
		return fmt.Errorf("unknown severity %q", f.Severity)
	}
	if f.Status != "" && !oneOf(f.Status, schemas.StatusOpen, schemas.StatusAcknowledged, schemas.StatusResolved) {
		return fmt.Errorf("unknown status %q", f.Status)
	}
	if _, ok := AlertOrders[f.Order]; f.Order != "" && !ok {
		return fmt.Errorf("cannot order alerts by %q", f.Order)
	}
	if f.Limit < 0 || f.Limit > MaxAlertLimit {
		return fmt.Errorf("limit %d is outside [0, %d]", f.Limit, MaxAlertLimit)
	}
	if f.Offset < 0 || f.Offset > 1_000_000 {
		return fmt.Errorf("offset %d is outside [0, 1000000]", f.Offset)
	}
	return nil
}

func oneOf(s string, set ...string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// Match reports whether a reads through the filter (ignoring Limit, Offset
// and Order): the SSE stream applies list filters to published alerts.
func (f *AlertFilter) Match(a *schemas.Alert) bool {
	if (f.Kind != "" && a.Kind != f.Kind) || (f.Severity != "" && a.Severity != f.Severity) ||
		(f.Oblast != "" && a.Oblast != f.Oblast) || (f.Status != "" && a.Status != f.Status) {
		return false
	}
	if !f.Since.IsZero() && a.WindowEnd.Before(f.Since) {
		return false
	}
	if f.EntityID != "" && !oneOf(f.EntityID, a.EntityID, a.MeterID, a.FeederID, a.SiteID, a.OperatorID, a.RigID, a.LicenseID, a.TxID) {
		return false
	}
	return true
}

// ListAlerts returns the alerts the filter selects, at their latest version.
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]schemas.Alert, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	add := func(cond string, vs ...any) {
		where = append(where, cond)
		args = append(args, vs...)
	}
	if f.Kind != "" {
		add("kind = ?", f.Kind)
	}
	if f.Severity != "" {
		add("severity = ?", f.Severity)
	}
	if f.Oblast != "" {
		add("oblast = ?", f.Oblast)
	}
	if f.EntityID != "" {
		id := f.EntityID
		add("(entity_id = ? OR meter_id = ? OR feeder_id = ? OR site_id = ? OR operator_id = ? OR rig_id = ? OR license_id = ? OR tx_id = ?)", id, id, id, id, id, id, id, id)
	}
	if !f.Since.IsZero() {
		add("window_end >= ?", f.Since.UTC())
	}
	inner := ""
	if len(where) > 0 {
		inner = " WHERE " + strings.Join(where, " AND ")
	}
	q := s.alertsFrom(inner)
	if f.Status != "" {
		// People's status, not the row's copy of it.
		q += " WHERE cur_status = ?"
		args = append(args, f.Status)
	}
	order := AlertOrders[f.Order]
	if order == "" {
		order = AlertOrders["-updated_at"]
	}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	// Limit and offset are validated integers.
	q += " ORDER BY " + order + " LIMIT " + strconv.Itoa(f.Offset) + ", " + strconv.Itoa(limit)
	rows, err := s.scanAlerts(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	out := make([]schemas.Alert, len(rows))
	for i := range rows {
		out[i] = rows[i].Alert
	}
	return out, nil
}

// GetAlert returns one alert at its latest version, or an error wrapping
// ErrNotFound.
func (s *Store) GetAlert(ctx context.Context, id string) (schemas.Alert, error) {
	rows, err := s.alertsByID(ctx, []string{id})
	if err != nil {
		return schemas.Alert{}, err
	}
	a, ok := rows[id]
	if !ok {
		return schemas.Alert{}, fmt.Errorf("alert %q: %w", id, ErrNotFound)
	}
	return a.Alert, nil
}

// CanTransition reports whether an alert may go from status from to to:
// open -> acknowledged -> resolved, and open -> resolved.
func CanTransition(from, to string) bool {
	switch from {
	case schemas.StatusOpen:
		return to == schemas.StatusAcknowledged || to == schemas.StatusResolved
	case schemas.StatusAcknowledged:
		return to == schemas.StatusResolved
	}
	return false
}

// SetAlertStatus moves an alert to status with a note, recording who did
// it in alert_events, where people's state lives (see alertsFrom). It
// returns the updated alert; an unknown alert is ErrNotFound, a change not
// allowed from the current status ErrTransition. Any process may call it
// while the detector writes the alert's finding elsewhere: neither write
// takes the other's away.
func (s *Store) SetAlertStatus(ctx context.Context, id, status, note, who string) (schemas.Alert, error) {
	rows, err := s.alertsByID(ctx, []string{id})
	if err != nil {
		return schemas.Alert{}, err
	}
	cur, ok := rows[id]
	if !ok {
		return schemas.Alert{}, fmt.Errorf("alert %q: %w", id, ErrNotFound)
	}
	if !CanTransition(cur.Status, status) {
		return schemas.Alert{}, fmt.Errorf("alert %q is %s, cannot become %s: %w", id, cur.Status, status, ErrTransition)
	}
	now := time.Now().UTC().Truncate(time.Second)
	prev := cur.Status
	cur.Status, cur.Note, cur.UpdatedAt = status, note, now
	cur.version = nextVersion(cur.version)
	// The event is the state; the row's copy of it follows. Should the
	// copy fail, or a detector's write of the finding overtake it, reads
	// still show the event and FoldAlertState mends the copy.
	if err := s.insert(ctx, "alert_events", "alert_id, ts, seq, who, from_status, to_status, note", 1, func(int) []any {
		return []any{id, now, nextVersion(0), who, prev, status, note}
	}); err != nil {
		return schemas.Alert{}, err
	}
	if err := s.writeAlertRows(ctx, []storedAlert{cur}); err != nil {
		return schemas.Alert{}, err
	}
	return cur.Alert, nil
}

// FoldAlertState copies people's state (alert_events) into the alerts rows
// whose copy differs, as a detector's write of a finding that overtook an
// acknowledgement leaves it, and returns how many rows it rewrote. Reads
// through this package never need it; it keeps SELECT status FROM alerts
// FINAL right for users of the table. Harmless to run in several processes
// at once: they write the same state.
func (s *Store) FoldAlertState(ctx context.Context) (int, error) {
	rows, err := s.scanAlerts(ctx, s.alertsFrom(" WHERE alert_id GLOBAL IN (SELECT alert_id FROM "+s.db+".alert_events)")+
		" WHERE h_n > 0 AND (status != cur_status OR note != cur_note OR updated_at != cur_updated_at)")
	if err != nil {
		return 0, err
	}
	for i := range rows {
		rows[i].version = nextVersion(rows[i].version)
	}
	if err := s.writeAlertRows(ctx, rows); err != nil {
		return 0, fmt.Errorf("cannot fold people's state into %d alerts: %w", len(rows), err)
	}
	return len(rows), nil
}

// CloseAlerts marks the findings ids as closed by the detector (they have
// stopped holding) and returns the alerts it changed, as stored; people's
// state stays. An id already closed, or unknown, is left alone.
func (s *Store) CloseAlerts(ctx context.Context, ids []string) ([]schemas.Alert, error) {
	old, err := s.alertsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	var write []storedAlert
	for _, id := range ids {
		a, ok := old[id]
		if !ok || a.Closed {
			continue
		}
		a.Closed, a.UpdatedAt, a.version = true, now, nextVersion(a.version)
		old[id] = a // an id given twice is written once
		write = append(write, a)
	}
	if err := s.writeAlertRows(ctx, write); err != nil {
		return nil, err
	}
	out := make([]schemas.Alert, len(write))
	for i := range write {
		out[i] = write[i].Alert
	}
	return out, nil
}

// AlertEvent is one status change of an alert.
type AlertEvent struct {
	TS   time.Time `json:"ts"`
	Who  string    `json:"who"`
	From string    `json:"from_status"`
	To   string    `json:"to_status"`
	Note string    `json:"note,omitempty"`
}

// AlertEvents returns an alert's status changes, oldest first.
func (s *Store) AlertEvents(ctx context.Context, id string) ([]AlertEvent, error) {
	rows, err := s.conn.Query(ctx, "SELECT ts, who, from_status, to_status, note FROM "+s.db+".alert_events WHERE alert_id = ? ORDER BY ts, seq", id)
	if err != nil {
		return nil, fmt.Errorf("cannot read events of alert %q: %w", id, err)
	}
	defer rows.Close()
	var out []AlertEvent
	for rows.Next() {
		var e AlertEvent
		if err := rows.Scan(&e.TS, &e.Who, &e.From, &e.To, &e.Note); err != nil {
			return nil, err
		}
		e.TS = e.TS.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// CountAlerts returns the number of distinct alerts stored.
func (s *Store) CountAlerts(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+".alerts FINAL").Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot count alerts: %w", err)
	}
	return n, nil
}
