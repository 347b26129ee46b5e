package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/investigate"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// route is one API route: who may call it, whether calls are audited, and
// its handler. Every route is in the OpenAPI document (a test checks).
type route struct {
	Method, Path string
	// Role is the least role allowed; empty means public.
	Role string
	// Action names the call in the audit trail and in 403 messages.
	Action  string
	audited bool
	// pathVars are the path wildcards, kept in audit rows.
	pathVars []string
	// queryToken lets the token come as ?access_token= (SSE only).
	queryToken bool
	h          func(h *Handler, w http.ResponseWriter, r *http.Request, c *caller) error
}

// RouteInfo describes a route for documentation and tests.
type RouteInfo struct {
	Method, Path, Role, Action string
	Audited                    bool
}

// Routes lists every API route.
func Routes() []RouteInfo {
	out := make([]RouteInfo, len(routes))
	for i, r := range routes {
		out[i] = RouteInfo{Method: r.Method, Path: r.Path, Role: r.Role, Action: r.Action, Audited: r.audited}
	}
	return out
}

const (
	op  = store.RoleOperator
	inv = store.RoleInvestigator
	adm = store.RoleAdmin
)

var routes []*route

func init() {
	routes = []*route{
		{Method: "GET", Path: "/api/v1/openapi.json", Action: "read the API document", h: (*Handler).openapi},
		{Method: "GET", Path: "/api/v1/whoami", Role: op, Action: "whoami", h: (*Handler).whoami},
		{Method: "GET", Path: "/api/v1/alerts", Role: op, Action: "list alerts", h: (*Handler).listAlerts},
		{Method: "GET", Path: "/api/v1/alerts/stream", Role: op, Action: "stream alerts", queryToken: true, h: (*Handler).streamAlerts},
		{Method: "GET", Path: "/api/v1/alerts/{id}", Role: op, Action: "read alert", pathVars: []string{"id"}, h: (*Handler).getAlert},
		{Method: "POST", Path: "/api/v1/alerts/{id}/acknowledge", Role: op, Action: "acknowledge alert", audited: true, pathVars: []string{"id"}, h: (*Handler).acknowledge},
		{Method: "POST", Path: "/api/v1/alerts/{id}/resolve", Role: op, Action: "resolve alert", audited: true, pathVars: []string{"id"}, h: (*Handler).resolve},
		{Method: "GET", Path: "/api/v1/alerts/{id}/evidence", Role: inv, Action: "export evidence", audited: true, pathVars: []string{"id"}, h: (*Handler).evidence},
		{Method: "GET", Path: "/api/v1/calc", Role: op, Action: "calculator", h: (*Handler).calc},
		{Method: "GET", Path: "/api/v1/feeders", Role: inv, Action: "rank feeders", audited: true, h: (*Handler).feeders},
		{Method: "GET", Path: "/api/v1/feeders/{id}", Role: inv, Action: "read feeder", audited: true, pathVars: []string{"id"}, h: (*Handler).feeder},
		{Method: "GET", Path: "/api/v1/sites/{id}", Role: inv, Action: "read site", audited: true, pathVars: []string{"id"}, h: (*Handler).site},
		{Method: "GET", Path: "/api/v1/operators/{id}", Role: inv, Action: "read operator", audited: true, pathVars: []string{"id"}, h: (*Handler).operator},
		{Method: "GET", Path: "/api/v1/registry/search", Role: inv, Action: "search registry", audited: true, h: (*Handler).search},
		{Method: "GET", Path: "/api/v1/tokens", Role: adm, Action: "list tokens", audited: true, h: (*Handler).listTokens},
		{Method: "POST", Path: "/api/v1/tokens", Role: adm, Action: "create token", audited: true, h: (*Handler).createToken},
		{Method: "DELETE", Path: "/api/v1/tokens/{name}", Role: adm, Action: "revoke token", audited: true, pathVars: []string{"name"}, h: (*Handler).revokeToken},
		{Method: "GET", Path: "/api/v1/audit", Role: adm, Action: "read audit", audited: true, h: (*Handler).listAudit},
		{Method: "GET", Path: "/api/v1/config", Role: adm, Action: "read configuration", audited: true, h: (*Handler).config},
	}
}

func (h *Handler) openapi(w http.ResponseWriter, r *http.Request, _ *caller) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openapiJSON)
	return err
}

func (h *Handler) whoami(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// AlertList is the answer of GET /api/v1/alerts.
type AlertList struct {
	Alerts []schemas.Alert `json:"alerts"`
	Limit  int             `json:"limit"`
	Offset int             `json:"offset"`
}

func (h *Handler) listAlerts(w http.ResponseWriter, r *http.Request, _ *caller) error {
	f, err := h.alertFilter(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	as, err := h.d.Store.ListAlerts(r.Context(), f)
	if err != nil {
		return err
	}
	if as == nil {
		as = []schemas.Alert{}
	}
	writeJSON(w, http.StatusOK, AlertList{Alerts: as, Limit: f.Limit, Offset: f.Offset})
	return nil
}

func pathID(r *http.Request, name string) (string, error) {
	return ParseID(name, r.PathValue(name))
}

// AlertDetail is the answer of GET /api/v1/alerts/{id}.
type AlertDetail struct {
	schemas.Alert
	Events []store.AlertEvent `json:"events"`
}

func (h *Handler) getAlert(w http.ResponseWriter, r *http.Request, _ *caller) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a, err := h.d.Store.GetAlert(r.Context(), id)
	if err != nil {
		return err
	}
	ev, err := h.d.Store.AlertEvents(r.Context(), id)
	if err != nil {
		return err
	}
	if ev == nil {
		ev = []store.AlertEvent{}
	}
	writeJSON(w, http.StatusOK, AlertDetail{Alert: a, Events: ev})
	return nil
}

// MaxNoteLen bounds an acknowledgement or resolution note.
const MaxNoteLen = 4000

// noteBody is the body of acknowledge and resolve: {"note": "..."}. An
// empty body means no note.
type noteBody struct {
	Note string `json:"note"`
}

func readNote(r *http.Request) (string, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return "", errorf(http.StatusBadRequest, "cannot read the body: %v", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return "", nil
	}
	var nb noteBody
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&nb); err != nil {
		return "", errorf(http.StatusBadRequest, "body: want {\"note\": \"...\"}")
	}
	if len(nb.Note) > MaxNoteLen || !utf8.ValidString(nb.Note) {
		return "", errorf(http.StatusBadRequest, "note: want valid UTF-8 of at most %d bytes", MaxNoteLen)
	}
	return nb.Note, nil
}

func (h *Handler) acknowledge(w http.ResponseWriter, r *http.Request, c *caller) error {
	return h.setStatus(w, r, c, schemas.StatusAcknowledged)
}

func (h *Handler) resolve(w http.ResponseWriter, r *http.Request, c *caller) error {
	return h.setStatus(w, r, c, schemas.StatusResolved)
}

func (h *Handler) setStatus(w http.ResponseWriter, r *http.Request, c *caller, status string) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	note, err := readNote(r)
	if err != nil {
		return err
	}
	c.audit = map[string]any{"note": note}
	a, err := h.d.Store.SetAlertStatus(r.Context(), id, status, note, c.Name)
	if err != nil {
		return err
	}
	// The change is stored; boards learning of it late is no reason to
	// fail the request (they show it on their next load).
	if err := h.d.Announce(r.Context(), []schemas.Alert{a}); err != nil {
		h.log.Warn("cannot announce an alert change", zap.String("alert_id", a.AlertID), zap.Error(err))
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (h *Handler) streamAlerts(w http.ResponseWriter, r *http.Request, _ *caller) error {
	q := r.URL.Query()
	q.Del("access_token")
	f, err := h.alertFilter(r.Context(), q)
	if err != nil {
		return err
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return errors.New("streaming is not supported by this connection")
	}
	ch, cancel := h.d.Broadcaster.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": rigwatch alert stream\nretry: 3000\n\n")
	fl.Flush()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case a := <-ch:
			if !f.Match(&a) {
				continue
			}
			b, err := json.Marshal(a)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "event: alert\nid: %s\ndata: %s\n\n", sseSafe(a.AlertID), b); err != nil {
				return nil
			}
			fl.Flush()
		}
	}
}

// sseSafe keeps an id on one SSE line.
func sseSafe(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

func (h *Handler) calc(w http.ResponseWriter, r *http.Request, _ *caller) error {
	q := r.URL.Query()
	if err := checkParams(q, "machines", "watts", "model", "hours", "days", "tariff", "revenue"); err != nil {
		return err
	}
	in, err := ParseCalcInput(q)
	if err != nil {
		return err
	}
	res, err := registry.Calc(in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// ParseCalcInput reads the calculator's inputs (the `rigwatch calc` ones):
// machines, watts (per machine) or model, hours (per day, default 24),
// days (per month, default 30), tariff (KZT per kWh), revenue (KZT per
// month, optional). It parses numbers here and leaves their rules to
// registry.CalcInput.Check, the command line's rules too.
func ParseCalcInput(q interface{ Get(string) string }) (registry.CalcInput, error) {
	var in registry.CalcInput
	var err error
	if q.Get("machines") == "" {
		return in, badParam("machines", "required")
	}
	if in.Machines, err = ParseInt("machines", q.Get("machines"), 0, math.MinInt, math.MaxInt); err != nil {
		return in, err
	}
	if in.WattsPerMachine, err = ParseFloat("watts", q.Get("watts"), 0, math.Inf(-1), math.Inf(1)); err != nil {
		return in, err
	}
	if m := q.Get("model"); m != "" {
		if in.Model, err = ParseID("model", m); err != nil {
			return in, err
		}
	}
	if in.HoursPerDay, err = ParseFloat("hours", q.Get("hours"), 24, math.Inf(-1), math.Inf(1)); err != nil {
		return in, err
	}
	if in.DaysPerMonth, err = ParseInt("days", q.Get("days"), 30, math.MinInt, math.MaxInt); err != nil {
		return in, err
	}
	if in.TariffKZTPerKWh, err = ParseFloat("tariff", q.Get("tariff"), 0, math.Inf(-1), math.Inf(1)); err != nil {
		return in, err
	}
	if v := q.Get("revenue"); v != "" {
		rev, err := ParseFloat("revenue", v, 0, math.Inf(-1), math.Inf(1))
		if err != nil {
			return in, err
		}
		in.RevenueKZT = &rev
	}
	if err := in.Check(); err != nil {
		var ce *registry.CalcInputError
		if errors.As(err, &ce) {
			return in, badParam(ce.Param, "%v: %s", ce.Value, ce.Rule)
		}
		return in, err
	}
	return in, nil
}

// Window reads a page's window from since and until. until defaults to the
// event time of the newest stored reading, wherever it lies against the
// wall clock (a replay of last year, a demo running ahead of it), and to
// now only while nothing is stored; since is a duration back from until or
// an RFC 3339 time, def when empty. The API's pages and the CLI share it.
func Window(ctx context.Context, st *store.Store, since, until string, def time.Duration, now time.Time) (from, to time.Time, err error) {
	if until != "" {
		to, err = ParseTime("until", until)
	} else {
		to, err = investigate.DataNow(ctx, st, now)
	}
	if err != nil {
		return from, to, err
	}
	from, err = ParseSince(since, to, def)
	return from, to, err
}

// alertFilter reads an alert filter whose since, when a duration, counts
// back from the newest data.
func (h *Handler) alertFilter(ctx context.Context, q url.Values) (store.AlertFilter, error) {
	now := h.d.Now()
	if q.Get("since") != "" {
		var err error
		if now, err = investigate.DataNow(ctx, h.d.Store, now); err != nil {
			return store.AlertFilter{}, err
		}
	}
	return ParseAlertFilter(q, now)
}

// window reads the page routes' window: alert=ID (that alert's window), or
// since and until.
func (h *Handler) window(r *http.Request, def time.Duration) (from, to time.Time, err error) {
	q := r.URL.Query()
	if v := q.Get("alert"); v != "" {
		if q.Get("since") != "" || q.Get("until") != "" {
			return from, to, badParam("alert", "takes the alert's window: give it without since and until")
		}
		id, err := ParseID("alert", v)
		if err != nil {
			return from, to, err
		}
		a, err := h.d.Store.GetAlert(r.Context(), id)
		if err != nil {
			return from, to, err
		}
		from, to = investigate.AlertWindow(a)
		return from, to, nil
	}
	return Window(r.Context(), h.d.Store, q.Get("since"), q.Get("until"), def, h.d.Now())
}

func (h *Handler) feeders(w http.ResponseWriter, r *http.Request, _ *caller) error {
	q := r.URL.Query()
	if err := checkParams(q, "top", "since", "until", "oblast"); err != nil {
		return err
	}
	top, err := ParseInt("top", q.Get("top"), 20, 1, 10000)
	if err != nil {
		return err
	}
	var oblast string
	if v := q.Get("oblast"); v != "" {
		if oblast, err = ParseID("oblast", v); err != nil {
			return err
		}
	}
	from, to, err := h.window(r, 30*24*time.Hour)
	if err != nil {
		return err
	}
	rank, err := h.q.FeederRanking(r.Context(), from, to, top, oblast)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rank)
	return nil
}

func (h *Handler) feeder(w http.ResponseWriter, r *http.Request, _ *caller) error {
	return h.page(w, r, 7*24*time.Hour, func(ctx context.Context, id string, from, to time.Time) (any, error) {
		return h.q.Feeder(ctx, id, from, to)
	})
}

func (h *Handler) site(w http.ResponseWriter, r *http.Request, _ *caller) error {
	return h.page(w, r, 7*24*time.Hour, func(ctx context.Context, id string, from, to time.Time) (any, error) {
		return h.q.Site(ctx, id, from, to)
	})
}

func (h *Handler) operator(w http.ResponseWriter, r *http.Request, _ *caller) error {
	return h.page(w, r, 30*24*time.Hour, func(ctx context.Context, id string, from, to time.Time) (any, error) {
		return h.q.Operator(ctx, id, from, to)
	})
}

// page serves an entity's page: the id from the path, a since/until window
// (def by default, at most investigate.MaxPageWindow), and what get makes of them.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, def time.Duration,
	get func(ctx context.Context, id string, from, to time.Time) (any, error)) error {
	if err := checkParams(r.URL.Query(), "since", "until", "alert"); err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	from, to, err := h.window(r, def)
	if err != nil {
		return err
	}
	if to.Sub(from) > investigate.MaxPageWindow {
		return badParam("since", "a page covers at most %d days", int(investigate.MaxPageWindow.Hours()/24))
	}
	d, err := get(r.Context(), id, from, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (h *Handler) search(w http.ResponseWriter, r *http.Request, _ *caller) error {
	q := r.URL.Query()
	if err := checkParams(q, "q", "at"); err != nil {
		return err
	}
	term, err := ParseID("q", q.Get("q"))
	if err != nil {
		return err
	}
	var at time.Time
	if v := q.Get("at"); v != "" {
		if at, err = ParseTime("at", v); err != nil {
			return err
		}
	} else if at, err = investigate.RegistryNow(r.Context(), h.d.Store, h.d.Now()); err != nil {
		return err
	}
	res, err := h.q.Search(term, at)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (h *Handler) evidence(w http.ResponseWriter, r *http.Request, c *caller) error {
	q := r.URL.Query()
	if err := checkParams(q, "format"); err != nil {
		return err
	}
	format := q.Get("format")
	if format == "" {
		format = "zip"
	}
	if format != "zip" && format != "tar.gz" {
		return badParam("format", "want zip or tar.gz")
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	b, err := h.q.Evidence(r.Context(), id, c.Name)
	if err != nil {
		return err
	}
	name := b.DirName()
	if format == "zip" {
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.zip"`)
		w.WriteHeader(http.StatusOK)
		return b.WriteZip(w)
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.tar.gz"`)
	w.WriteHeader(http.StatusOK)
	return b.WriteTarGz(w)
}

func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request, _ *caller) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	ts, err := h.d.Store.ListTokens(r.Context())
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []store.Token{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
	return nil
}

// NewToken is the answer of POST /api/v1/tokens: the token itself is shown
// this once.
type NewToken struct {
	store.Token
	Secret string `json:"token"`
}

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	var body struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return errorf(http.StatusBadRequest, "body: want {\"name\": \"...\", \"role\": \"operator|investigator|admin\"}")
	}
	c.audit = map[string]any{"name": body.Name, "role": body.Role}
	if !store.ValidTokenName(body.Name) {
		return badParam("name", "want 1-64 letters, digits or _.@-")
	}
	if store.RoleRank(body.Role) == 0 {
		return badParam("role", "want operator, investigator or admin")
	}
	secret, t, err := h.d.Store.CreateToken(r.Context(), body.Name, body.Role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, NewToken{Token: t, Secret: secret})
	return nil
}

func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request, _ *caller) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	name := r.PathValue("name")
	if !store.ValidTokenName(name) {
		return badParam("name", "not a token name")
	}
	t, err := h.d.Store.RevokeToken(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request, _ *caller) error {
	q := r.URL.Query()
	if err := checkParams(q, "who", "action", "since", "limit", "offset"); err != nil {
		return err
	}
	var f store.AuditFilter
	var err error
	if v := q.Get("who"); v != "" {
		if f.Who, err = ParseID("who", v); err != nil {
			return err
		}
	}
	if v := q.Get("action"); v != "" {
		if f.Action, err = ParseID("action", v); err != nil {
			return err
		}
	}
	if v := q.Get("since"); v != "" {
		if f.Since, err = ParseSince(v, h.d.Now(), 0); err != nil {
			return err
		}
	}
	if f.Limit, err = ParseInt("limit", q.Get("limit"), 100, 1, store.MaxAlertLimit); err != nil {
		return err
	}
	if f.Offset, err = ParseInt("offset", q.Get("offset"), 0, 0, 1_000_000); err != nil {
		return err
	}
	es, err := h.d.Store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	if es == nil {
		es = []store.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"audit": es})
	return nil
}

func (h *Handler) config(w http.ResponseWriter, r *http.Request, _ *caller) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	s := h.d.Settings
	if s == nil {
		s = map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": h.d.Version, "settings": s,
		"tariff_kzt_per_kwh": h.d.TariffKZTPerKWh, "loss_bands": h.d.LossBands, "registry_loaded": h.d.Registry != nil})
	return nil
}
