package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AuditEntry is one row of the audit trail: who did what, when, with which
// parameters, and how it ended (the HTTP status, or 0 from the CLI).
type AuditEntry struct {
	TS         time.Time `json:"ts"`
	Who        string    `json:"who"`
	Role       string    `json:"role"`
	Action     string    `json:"action"`
	Params     string    `json:"params"` // a JSON object
	RemoteAddr string    `json:"remote_addr,omitempty"`
	Status     int       `json:"status"`
}

// WriteAudit appends entries to the audit trail.
func (s *Store) WriteAudit(ctx context.Context, entries ...AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.insert(ctx, "audit", "ts, seq, who, role, action, params, remote_addr, status", len(entries), func(i int) []any {
		e := &entries[i]
		ts := e.TS
		if ts.IsZero() {
			ts = time.Now()
		}
		return []any{ts.UTC(), nextVersion(0), e.Who, e.Role, e.Action, e.Params, e.RemoteAddr, uint16(e.Status)}
	})
}

// AuditFilter selects audit rows. Zero fields do not filter.
type AuditFilter struct {
	Who    string
	Action string
	Since  time.Time
	Until  time.Time
	Limit  int // zero means 100, at most MaxAlertLimit
	Offset int
}

// ListAudit returns audit rows, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit < 0 || f.Limit > MaxAlertLimit || f.Offset < 0 || f.Offset > 1_000_000 {
		return nil, fmt.Errorf("limit %d or offset %d out of range", f.Limit, f.Offset)
	}
	var where []string
	var args []any
	if f.Who != "" {
		where, args = append(where, "who = ?"), append(args, f.Who)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "ts >= ?"), append(args, f.Since.UTC())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "ts <= ?"), append(args, f.Until.UTC())
	}
	q := "SELECT ts, who, role, action, params, remote_addr, status FROM " + s.db + ".audit"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	q += " ORDER BY ts DESC, seq DESC LIMIT " + strconv.Itoa(f.Offset) + ", " + strconv.Itoa(limit)
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var st uint16
		if err := rows.Scan(&e.TS, &e.Who, &e.Role, &e.Action, &e.Params, &e.RemoteAddr, &st); err != nil {
			return nil, fmt.Errorf("cannot read audit: %w", err)
		}
		e.TS, e.Status = e.TS.UTC(), int(st)
		out = append(out, e)
	}
	return out, rows.Err()
}

// CountRows returns the number of rows of a table, as stored (no FINAL):
// tests check that nothing changed. table must be one of rigwatch's own.
func (s *Store) CountRows(ctx context.Context, table string) (uint64, error) {
	if !oneOf(table, "licenses", "rigs", "meters", "readings", "purchases", "rejects", "alerts", "api_tokens", "audit", "alert_events") {
		return 0, fmt.Errorf("unknown table %q", table)
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+"."+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot count %s: %w", table, err)
	}
	return n, nil
}
