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

// alertMu serialises the read-modify-write of alert rows within a process,
// so that a person's acknowledgement and the detector's next evaluation
// cannot overwrite each other. The API and the detector share the serve
// process; other processes only read alerts.
var alertMu sync.Mutex

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

const alertCols = "alert_id, kind, severity, entity_type, entity_id, meter_id, feeder_id, site_id, operator_id, rig_id, license_id, tx_id, oblast, window_start, window_end, detected_at, observed_kwh, expected_kwh, excess_kwh, estimated_value_kzt, score, summary, evidence, status, note, created_at, updated_at, version"

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
		if err := rows.Scan(&a.AlertID, &a.Kind, &a.Severity, &a.EntityType, &a.EntityID, &a.MeterID, &a.FeederID, &a.SiteID, &a.OperatorID, &a.RigID, &a.LicenseID, &a.TxID, &a.Oblast,
			&a.WindowStart, &a.WindowEnd, &a.DetectedAt, &a.ObservedKWh, &a.ExpectedKWh, &a.ExcessKWh, &a.EstimatedValueKZT, &a.Score, &a.Summary, &ev, &a.Status, &a.Note, &a.CreatedAt, &a.UpdatedAt, &a.version); err != nil {
			return nil, fmt.Errorf("cannot read alerts: %w", err)
		}
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
		return []any{a.AlertID, a.Kind, a.Severity, a.EntityType, a.EntityID, a.MeterID, a.FeederID, a.SiteID, a.OperatorID, a.RigID, a.LicenseID, a.TxID, a.Oblast,
			a.WindowStart, a.WindowEnd, a.DetectedAt, a.ObservedKWh, a.ExpectedKWh, a.ExcessKWh, a.EstimatedValueKZT, a.Score, a.Summary, string(ev), a.Status, a.Note, a.CreatedAt, a.UpdatedAt, a.version}
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

// alertsByID reads the current rows of the given alerts, in chunks.
func (s *Store) alertsByID(ctx context.Context, ids []string) (map[string]storedAlert, error) {
	out := make(map[string]storedAlert, len(ids))
	const chunk = 1000
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		part := ids[:n]
		ids = ids[n:]
		rows, err := s.scanAlerts(ctx, "SELECT "+alertCols+" FROM "+s.db+".alerts FINAL WHERE alert_id IN ("+placeholders(len(part))+")", anyStrings(part)...)
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
// before (same alert_id) takes the new window, figures, summary and
// evidence but keeps what people set: status, note and created_at, so an
// acknowledged alert stays acknowledged. An alert whose finding did not
// change is not rewritten. New alerts start open.
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
	alertMu.Lock()
	defer alertMu.Unlock()
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
		reflect.DeepEqual(a.Evidence, b.Evidence)
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
	"updated_at": "updated_at ASC, alert_id", "-updated_at": "updated_at DESC, alert_id",
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
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.EntityID != "" {
		id := f.EntityID
		add("(entity_id = ? OR meter_id = ? OR feeder_id = ? OR site_id = ? OR operator_id = ? OR rig_id = ? OR license_id = ? OR tx_id = ?)", id, id, id, id, id, id, id, id)
	}
	if !f.Since.IsZero() {
		add("window_end >= ?", f.Since.UTC())
	}
	q := "SELECT " + alertCols + " FROM " + s.db + ".alerts FINAL"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
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
// it in alert_events. It returns the updated alert; an unknown alert is
// ErrNotFound, a change not allowed from the current status ErrTransition.
func (s *Store) SetAlertStatus(ctx context.Context, id, status, note, who string) (schemas.Alert, error) {
	alertMu.Lock()
	defer alertMu.Unlock()
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
	// The event first: a status without its history would be worse than a
	// history entry whose status write must be retried.
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
