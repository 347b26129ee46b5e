package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/detect"
	"github.com/rigwatch/rigwatch/investigate"
	"github.com/rigwatch/rigwatch/notify"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// Deps is what the JSON API runs on.
type Deps struct {
	// Store is rigwatch's ClickHouse storage; required.
	Store *store.Store
	// Registry is the live registry index; nil makes the pages that need it
	// answer 503.
	Registry *registry.Index
	// Broadcaster feeds GET /api/v1/alerts/stream; nil means a private one
	// nobody publishes to but Announce's default.
	Broadcaster *notify.Broadcaster
	// Announce sends out an alert a person changed (acknowledged,
	// resolved), so that every process's board shows it (notify.Sink's
	// Announce: the alerts topic, which every process's Board follows).
	// Nil: straight to Broadcaster, this process's board only.
	Announce func(ctx context.Context, changed []schemas.Alert) error
	// AdminToken, if set, is a static admin token from configuration (the
	// bootstrap: it can create the real tokens). Compared in constant time;
	// never logged.
	AdminToken string
	// Version is rigwatch's version, written into evidence bundles.
	Version string
	// Settings is the configuration shown to admins at GET /api/v1/config;
	// the caller removes secrets.
	Settings map[string]any
	// TariffKZTPerKWh values unaccounted energy; zero means 25.
	TariffKZTPerKWh float64
	// LossBands are the plausible technical loss bands by feeder class,
	// for feeders the detector has not judged yet; nil means
	// detect.DefaultLossBand for every class. Judged feeders use the
	// detector's own loss model (table loss_models).
	LossBands map[string]detect.LossBand
	// Location is the settlement time zone for daily figures; nil means
	// Kazakhstan's UTC+5.
	Location *time.Location
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Log receives errors; nil means none.
	Log *zap.Logger
}

func (d *Deps) defaults() {
	if d.Broadcaster == nil {
		d.Broadcaster = notify.NewBroadcaster(0)
	}
	if d.Announce == nil {
		bc := d.Broadcaster
		d.Announce = func(_ context.Context, as []schemas.Alert) error { bc.Publish(as); return nil }
	}
	if d.TariffKZTPerKWh == 0 {
		d.TariffKZTPerKWh = 25
	}
	if d.Location == nil {
		d.Location = schemas.Local
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Version == "" {
		d.Version = "dev"
	}
}

// Mount registers every /api/v1/ route on srv.
func Mount(srv *Server, d Deps) error {
	h, err := NewHandler(d)
	if err != nil {
		return err
	}
	srv.Handle("/api/v1/", h)
	return nil
}

// Handler serves the JSON API. It is safe for concurrent use.
type Handler struct {
	d   Deps
	q   *investigate.Queries
	mux *http.ServeMux
	log *zap.Logger
}

// NewHandler returns the API's handler for everything under /api/v1/.
func NewHandler(d Deps) (*Handler, error) {
	if d.Store == nil {
		return nil, errors.New("api: Deps.Store is required")
	}
	d.defaults()
	h := &Handler{d: d, mux: http.NewServeMux(), log: d.Log.With(zap.String("component", "api"))}
	h.q = &investigate.Queries{Store: d.Store, Registry: d.Registry, TariffKZTPerKWh: d.TariffKZTPerKWh, LossBands: d.LossBands, Location: d.Location, Version: d.Version}
	for _, rt := range routes {
		rt := rt
		h.mux.HandleFunc(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, rt) })
	}
	h.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	})
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// caller is the authenticated client of one request.
type caller struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// audit holds extra parameters (a request body's note) for the audit row.
	audit map[string]any
}

// httpError is an error with the status it answers.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (h *Handler) statusOf(err error) (int, string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.code, he.msg
	case errors.Is(err, errBadParam), errors.Is(err, registry.ErrInvalidInput):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, store.ErrTransition), errors.Is(err, store.ErrTokenExists):
		return http.StatusConflict, err.Error()
	case errors.Is(err, investigate.ErrNoRegistry):
		return http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, context.Canceled):
		return 499, "request canceled"
	}
	h.log.Error("API request failed", zap.Error(err))
	return http.StatusInternalServerError, "internal error"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	// Encoded whole first: a value JSON cannot hold (NaN) is a 500 with a
	// reason, not a 200 with an empty body.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		writeError(w, http.StatusInternalServerError, "cannot encode the answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, code int, msg string) {
	if !utf8.ValidString(msg) {
		msg = strings.ToValidUTF8(msg, "?")
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// bearer returns the request's token: the Authorization header, or for the
// SSE stream (browsers' EventSource cannot set headers) access_token.
func bearer(r *http.Request, rt *route) string {
	if a := r.Header.Get("Authorization"); a != "" {
		if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			return strings.TrimSpace(a[7:])
		}
		return ""
	}
	if rt.queryToken {
		return r.URL.Query().Get("access_token")
	}
	return ""
}

func (h *Handler) authenticate(ctx context.Context, token string) (*caller, error) {
	if token == "" || len(token) > 256 {
		return nil, nil
	}
	if h.d.AdminToken != "" {
		a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(h.d.AdminToken))
		if subtle.ConstantTimeCompare(a[:], b[:]) == 1 {
			return &caller{Name: "bootstrap-admin", Role: store.RoleAdmin}, nil
		}
	}
	t, err := h.d.Store.LookupToken(ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &caller{Name: t.Name, Role: t.Role}, nil
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rt *route) {
	start := h.d.Now()
	sw := &statusWriter{ResponseWriter: w}
	var c *caller
	if rt.Role != "" {
		who, err := h.authenticate(r.Context(), bearer(r, rt))
		if err != nil {
			code, msg := h.statusOf(err)
			writeError(sw, code, msg)
			return
		}
		if who == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rigwatch"`)
			writeError(sw, http.StatusUnauthorized, "missing or invalid token: send Authorization: Bearer TOKEN")
			return
		}
		c = who
		if store.RoleRank(c.Role) < store.RoleRank(rt.Role) {
			writeError(sw, http.StatusForbidden, fmt.Sprintf("role %s may not %s (needs %s)", c.Role, rt.Action, rt.Role))
			h.audit(r, rt, c, sw.code, start)
			return
		}
	}
	if r.Method == http.MethodPost || r.Method == http.MethodDelete {
		r.Body = http.MaxBytesReader(sw, r.Body, 64<<10)
	}
	if err := rt.h(h, sw, r, c); err != nil {
		code, msg := h.statusOf(err)
		if sw.code == 0 {
			writeError(sw, code, msg)
		} else {
			h.log.Warn("API request failed after answering", zap.String("route", rt.Path), zap.Error(err))
		}
	}
	if rt.audited && c != nil {
		h.audit(r, rt, c, sw.code, start)
	}
}

// maxAuditValue bounds each parameter value kept in the audit trail.
const maxAuditValue = 256

func (h *Handler) audit(r *http.Request, rt *route, c *caller, code int, start time.Time) {
	params := map[string]any{}
	for k, vs := range r.URL.Query() {
		if k == "access_token" || len(vs) == 0 {
			continue
		}
		params[clip(k)] = clip(vs[0])
	}
	for _, name := range rt.pathVars {
		params[name] = clip(r.PathValue(name))
	}
	for k, v := range c.audit {
		if s, ok := v.(string); ok {
			v = clip(s)
		}
		params[k] = v
	}
	b, _ := json.Marshal(params)
	if code == 0 {
		code = http.StatusOK
	}
	// The request may be gone (a closed SSE stream): the audit row is not.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := h.d.Store.WriteAudit(ctx, store.AuditEntry{TS: start, Who: c.Name, Role: c.Role, Action: rt.Action,
		Params: string(b), RemoteAddr: r.RemoteAddr, Status: code}); err != nil {
		h.log.Error("cannot write audit row", zap.String("action", rt.Action), zap.Error(err))
	}
}

func clip(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > maxAuditValue {
		s = strings.ToValidUTF8(s[:maxAuditValue], "") + "..."
	}
	return s
}
