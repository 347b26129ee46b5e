package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/schemas"
)

var (
	amSent = promauto.NewCounter(prometheus.CounterOpts{
		Name: "rigwatch_alertmanager_alerts_sent_total", Help: "Alerts (firing or resolved) an Alertmanager accepted.",
	})
	amFailed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "rigwatch_alertmanager_alerts_failed_total", Help: "Alerts an Alertmanager did not accept; the next re-send tries again.",
	})
)

// AlertLister reads stored alerts of one status, most recently updated
// first, a page at a time. The alerts table is the Alertmanager client's
// source, so any serve process can re-send, and a push lost to a crash or
// an outage is repaired by the next one.
type AlertLister func(ctx context.Context, status string, offset, limit int) ([]schemas.Alert, error)

// Alertmanager pushes rigwatch's alerts to Alertmanager's /api/v2/alerts as
// Prometheus does: each open or acknowledged alert is re-sent every Resend
// with endsAt a few intervals ahead, so Alertmanager keeps it firing while
// rigwatch runs and resolves it by itself if rigwatch goes quiet; a
// resolved alert, or one whose finding has closed in the detector (its
// closed flag, or a window that ended CloseAfter before the newest data),
// is sent with endsAt set, which resolves it. Labels: alertname (the kind),
// severity, alert_id, and oblast, feeder_id, site_id and operator_id where
// present; annotations: summary, the alert's page in the web UI, the
// event-time window and the figures.
//
// startsAt and endsAt are wall-clock times, as Alertmanager's timeouts and
// silences are: startsAt is the finding's detected_at (event time) but
// never later than now, since a demo's event time runs ahead of the clock
// and a replay's lies in the past; the event-time window is in the
// annotations.
//
// Zero values take the defaults named. Safe for concurrent use once set up;
// do not change the fields after the first call.
type Alertmanager struct {
	URLs        []string    // Alertmanager base URLs (every one of an HA group), e.g. http://alertmanager:9093
	ExternalURL string      // base URL of rigwatch's web UI, for each alert's link; empty: no link
	Alerts      AlertLister // required
	// EventTime returns the data's newest event time; an open alert whose
	// window ended more than CloseAfter before it has closed in the
	// detector, for findings stored before the detector set their closed
	// flag. Nil: alerts close only when resolved or flagged closed.
	EventTime func(ctx context.Context) (time.Time, error)
	// Updates carries alerts that changed just now (opened, updated, or
	// acknowledged or resolved by a person), pushed at once rather than at
	// the next re-send. Nil: none.
	Updates <-chan schemas.Alert

	Resend            time.Duration    // how often every firing alert is re-sent; default 1m
	CloseAfter        time.Duration    // default 48h, the detector's default
	ResolvedRetention time.Duration    // resolved alerts are re-sent this long after the resolve; default 15m
	Timeout           time.Duration    // per request; default 10s
	Client            *http.Client     // default: a client with no overall timeout (Timeout bounds each request)
	Log               *zap.Logger      // default zap.NewNop()
	Now               func() time.Time // default time.Now

	once      sync.Once
	endpoints []string
	mu        sync.Mutex
	eventNow  time.Time // the last EventTime read
}

// alertmanagerBatch bounds the alerts in one request.
const alertmanagerBatch = 1000

// ParseAlertmanagerURLs reads a comma-separated list of Alertmanager base
// URLs, checking each.
func ParseAlertmanagerURLs(list string) ([]string, error) {
	var urls []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("alertmanager URL: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("alertmanager URL %q must be an http or https base URL with a host, like http://alertmanager:9093", u.Redacted())
		}
		urls = append(urls, s)
	}
	if len(urls) == 0 {
		return nil, errors.New("alertmanager: no URL")
	}
	return urls, nil
}

// Validate checks the configuration.
func (m *Alertmanager) Validate() error {
	if _, err := ParseAlertmanagerURLs(strings.Join(m.URLs, ",")); err != nil {
		return err
	}
	if m.Alerts == nil {
		return errors.New("alertmanager: no alert source")
	}
	if m.Resend < 0 || m.CloseAfter < 0 || m.ResolvedRetention < 0 || m.Timeout < 0 {
		return errors.New("alertmanager: durations must not be negative")
	}
	return nil
}

func (m *Alertmanager) setup() {
	m.once.Do(func() {
		if m.Resend == 0 {
			m.Resend = time.Minute
		}
		if m.CloseAfter == 0 {
			m.CloseAfter = 48 * time.Hour
		}
		if m.ResolvedRetention == 0 {
			m.ResolvedRetention = 15 * time.Minute
		}
		if m.Timeout == 0 {
			m.Timeout = 10 * time.Second
		}
		if m.Client == nil {
			m.Client = &http.Client{}
		}
		if m.Log == nil {
			m.Log = zap.NewNop()
		}
		if m.Now == nil {
			m.Now = time.Now
		}
		m.Log = m.Log.With(zap.String("component", "alertmanager"))
		for _, s := range m.URLs {
			m.endpoints = append(m.endpoints, strings.TrimRight(s, "/")+"/api/v2/alerts")
		}
	})
}

// Run re-sends every Resend, and pushes Updates as they come, until ctx
// ends. It always returns nil: a failed push is logged, counted, and
// repaired by the next re-send.
func (m *Alertmanager) Run(ctx context.Context) error {
	m.setup()
	t := time.NewTicker(m.Resend)
	defer t.Stop()
	_ = m.Sync(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_ = m.Sync(ctx)
		case a, ok := <-m.Updates:
			if !ok {
				m.Updates = nil
				continue
			}
			batch := []schemas.Alert{a}
		drain:
			for len(batch) < alertmanagerBatch {
				select {
				case a, ok := <-m.Updates:
					if !ok {
						break drain
					}
					batch = append(batch, a)
				default:
					break drain
				}
			}
			m.mu.Lock()
			eventNow := m.eventNow
			m.mu.Unlock()
			_ = m.post(ctx, m.postable(batch, eventNow, m.Now()))
		}
	}
}

// Sync sends the alerts table's state once: every open or acknowledged
// alert, firing or (closed in the detector less than CloseAfter ago)
// resolved, and every alert resolved within ResolvedRetention. It returns
// the first error.
func (m *Alertmanager) Sync(ctx context.Context) error {
	m.setup()
	now := m.Now()
	var eventNow time.Time
	if m.EventTime != nil {
		t, err := m.EventTime(ctx)
		if err != nil {
			m.Log.Warn("cannot read the data's event time; no alert closes by age this round", zap.Error(err))
		}
		eventNow = t
		m.mu.Lock()
		m.eventNow = t
		m.mu.Unlock()
	}
	var all []schemas.Alert
	for _, status := range []string{schemas.StatusOpen, schemas.StatusAcknowledged, schemas.StatusResolved} {
		for offset := 0; ; offset += alertmanagerBatch {
			page, err := m.Alerts(ctx, status, offset, alertmanagerBatch)
			if err != nil {
				m.Log.Warn("cannot read the alerts to send", zap.String("status", status), zap.Error(err))
				return err
			}
			done := len(page) < alertmanagerBatch
			for _, a := range page {
				if status == schemas.StatusResolved && a.UpdatedAt.Before(now.Add(-m.ResolvedRetention)) {
					done = true // newest first: the rest were resolved longer ago
					break
				}
				all = append(all, a)
			}
			if done {
				break
			}
		}
	}
	return m.post(ctx, m.postable(all, eventNow, now))
}

// postable turns alerts into Alertmanager's postable alerts, leaving out
// those closed so long ago that Alertmanager has no need to hear of them.
func (m *Alertmanager) postable(as []schemas.Alert, eventNow, now time.Time) []model.Alert {
	now = now.UTC().Truncate(time.Millisecond)
	out := make([]model.Alert, 0, len(as))
	for i := range as {
		a := &as[i]
		var ends time.Time
		switch {
		case a.Status == schemas.StatusResolved:
			ends = a.UpdatedAt.UTC()
			if ends.IsZero() || ends.After(now) {
				ends = now
			}
		case a.Closed:
			// Closed by the detector: resolved there, and after
			// ResolvedRetention no longer worth sending.
			ends = a.UpdatedAt.UTC()
			if ends.IsZero() || ends.After(now) {
				ends = now
			}
			if ends.Before(now.Add(-m.ResolvedRetention)) {
				continue
			}
		case !eventNow.IsZero() && a.WindowEnd.Before(eventNow.Add(-m.CloseAfter)):
			if a.WindowEnd.Before(eventNow.Add(-2 * m.CloseAfter)) {
				continue // closed long ago: already resolved there, or never seen
			}
			ends = now
		default:
			ends = now.Add(4 * m.Resend) // firing: Prometheus's margin over its re-send delay
		}
		starts := a.DetectedAt.UTC()
		if starts.IsZero() || starts.After(now) {
			starts = now
		}
		if starts.After(ends) {
			starts = ends
		}
		pa := model.Alert{Labels: m.labels(a), Annotations: m.annotations(a), StartsAt: starts, EndsAt: ends, GeneratorURL: m.link(a)}
		if err := pa.Validate(); err != nil {
			// Alertmanager would refuse the whole request for it.
			m.Log.Warn("alert not sent to Alertmanager", zap.String("alert_id", a.AlertID), zap.Error(err))
			continue
		}
		out = append(out, pa)
	}
	return out
}

func (m *Alertmanager) labels(a *schemas.Alert) model.LabelSet {
	ls := model.LabelSet{model.AlertNameLabel: model.LabelValue(a.Kind), "severity": model.LabelValue(a.Severity),
		"alert_id": model.LabelValue(a.AlertID)}
	for k, v := range map[model.LabelName]string{"oblast": a.Oblast, "feeder_id": a.FeederID, "site_id": a.SiteID, "operator_id": a.OperatorID} {
		if v != "" {
			ls[k] = model.LabelValue(v)
		}
	}
	return ls
}

func (m *Alertmanager) annotations(a *schemas.Alert) model.LabelSet {
	ann := model.LabelSet{"summary": model.LabelValue(a.Summary),
		"entity":       model.LabelValue(a.EntityType + " " + a.EntityID),
		"window_start": model.LabelValue(a.WindowStart.UTC().Format(time.RFC3339)),
		"window_end":   model.LabelValue(a.WindowEnd.UTC().Format(time.RFC3339)),
		"detected_at":  model.LabelValue(a.DetectedAt.UTC().Format(time.RFC3339)),
		"status":       model.LabelValue(a.Status)}
	if link := m.link(a); link != "" {
		ann["url"] = model.LabelValue(link)
	}
	if a.ExcessKWh != nil {
		ann["excess_kwh"] = model.LabelValue(strconv.FormatFloat(*a.ExcessKWh, 'f', 1, 64))
	}
	if a.EstimatedValueKZT != nil {
		ann["estimated_value_kzt"] = model.LabelValue(strconv.FormatFloat(*a.EstimatedValueKZT, 'f', 0, 64))
	}
	if a.Note != "" {
		ann["note"] = model.LabelValue(a.Note)
	}
	return ann
}

// link is the alert's page in the web UI.
func (m *Alertmanager) link(a *schemas.Alert) string {
	if m.ExternalURL == "" {
		return ""
	}
	return strings.TrimRight(m.ExternalURL, "/") + "/#/alert/" + url.PathEscape(a.AlertID)
}

// post sends alerts to every Alertmanager, in batches, and returns the
// first error.
func (m *Alertmanager) post(ctx context.Context, alerts []model.Alert) error {
	var first error
	for start := 0; start < len(alerts); start += alertmanagerBatch {
		batch := alerts[start:min(start+alertmanagerBatch, len(alerts))]
		body, err := json.Marshal(batch)
		if err != nil {
			return fmt.Errorf("cannot encode alerts for Alertmanager: %w", err)
		}
		for _, ep := range m.endpoints {
			if err := m.postOne(ctx, ep, body); err != nil {
				amFailed.Add(float64(len(batch)))
				host := ""
				if u, perr := url.Parse(ep); perr == nil {
					host = u.Host // never the whole URL: it may carry credentials
				}
				err = fmt.Errorf("cannot push %d alerts to Alertmanager at %s: %w", len(batch), host, err)
				m.Log.Warn("Alertmanager push failed; the next re-send tries again", zap.Error(err))
				if first == nil {
					first = err
				}
				continue
			}
			amSent.Add(float64(len(batch)))
		}
	}
	return first
}

func (m *Alertmanager) postOne(ctx context.Context, endpoint string, body []byte) error {
	code, msg, err := postJSON(ctx, m.Client, m.Timeout, endpoint, body)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return fmt.Errorf("Alertmanager answered %d %s: %s", code, http.StatusText(code), msg)
	}
	return nil
}
