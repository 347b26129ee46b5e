// Package notify tells other systems about alerts: Alertmanager, fed as
// Prometheus feeds it (alertmanager.go), so a control room routes, silences
// and escalates rigwatch's findings with the Alertmanager it already runs;
// and a plain webhook that posts new critical alerts in the format
// Alertmanager sends to its receivers (webhook.go), for receivers that take
// that format directly.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/schemas"
)

var (
	sentAlerts = promauto.NewCounter(prometheus.CounterOpts{
		Name: "rigwatch_webhook_sent_total", Help: "Critical alerts delivered to the alert webhook.",
	})
	failedAlerts = promauto.NewCounter(prometheus.CounterOpts{
		Name: "rigwatch_webhook_failed_total", Help: "Critical alerts the alert webhook did not accept after every attempt.",
	})
	droppedAlerts = promauto.NewCounter(prometheus.CounterOpts{
		Name: "rigwatch_webhook_dropped_total", Help: "Critical alerts dropped because the alert webhook's queue was full.",
	})
)

// ErrQueueFull is returned by Notify when the receiver is too slow and the
// alerts were dropped.
var ErrQueueFull = errors.New("alert webhook queue full")

// Webhook posts new critical alerts to URL in Alertmanager's webhook format
// (version 4), one message per alert kind, grouped by alertname as an
// Alertmanager with group_by [alertname] would send them. Notify only
// queues; Run delivers, retrying with backoff, so a slow or dead receiver
// never holds up detection: when the queue is full, alerts are dropped and
// counted. Zero values take the defaults named. Safe for concurrent use
// once set up; do not change the fields after the first call.
type Webhook struct {
	URL         string        // http or https URL of the receiver
	Receiver    string        // the message's receiver field; default "rigwatch"
	ExternalURL string        // base URL of rigwatch's web UI, for each alert's generatorURL; empty: none
	Timeout     time.Duration // per attempt; default 10s
	Attempts    int           // attempts per message; default 4
	Backoff     time.Duration // wait before the first retry, doubling up to 30s; default 1s
	QueueSize   int           // messages held for delivery; default 256
	Client      *http.Client  // default: a client with no overall timeout (Timeout bounds each attempt)
	Log         *zap.Logger   // default zap.NewNop()

	once  sync.Once
	queue chan Message
}

// Validate checks the URL.
func (w *Webhook) Validate() error {
	u, err := url.Parse(w.URL)
	if err != nil {
		return fmt.Errorf("alert webhook URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("alert webhook URL %q must be an http or https URL with a host", u.Redacted())
	}
	return nil
}

func (w *Webhook) setup() {
	w.once.Do(func() {
		if w.Receiver == "" {
			w.Receiver = "rigwatch"
		}
		if w.Timeout <= 0 {
			w.Timeout = 10 * time.Second
		}
		if w.Attempts <= 0 {
			w.Attempts = 4
		}
		if w.Backoff <= 0 {
			w.Backoff = time.Second
		}
		if w.QueueSize <= 0 {
			w.QueueSize = 256
		}
		if w.Client == nil {
			w.Client = &http.Client{}
		}
		if w.Log == nil {
			w.Log = zap.NewNop()
		}
		host := ""
		if u, err := url.Parse(w.URL); err == nil {
			host = u.Host // never the whole URL: it may carry a token
		}
		w.Log = w.Log.With(zap.String("component", "webhook"), zap.String("host", host))
		w.queue = make(chan Message, w.QueueSize)
	})
}

// Notify queues the critical alerts among alerts for delivery and returns
// at once. It returns ErrQueueFull when some were dropped instead.
func (w *Webhook) Notify(ctx context.Context, alerts []schemas.Alert) error {
	w.setup()
	var dropped int
	for _, m := range w.messages(alerts) {
		select {
		case w.queue <- m:
		default:
			dropped += len(m.Alerts)
		}
	}
	if dropped > 0 {
		droppedAlerts.Add(float64(dropped))
		w.Log.Warn("alert webhook queue full; critical alerts dropped", zap.Int("dropped", dropped))
		return ErrQueueFull
	}
	return nil
}

// Run delivers queued messages until ctx ends, then makes one attempt,
// bounded by Timeout in all, at what is still queued. It always returns nil.
func (w *Webhook) Run(ctx context.Context) error {
	w.setup()
	for {
		select {
		case m := <-w.queue:
			_ = w.deliver(ctx, m)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), w.Timeout)
			defer cancel()
			for {
				select {
				case m := <-w.queue:
					if sctx.Err() != nil {
						failedAlerts.Add(float64(len(m.Alerts)))
						continue
					}
					_ = w.deliver(sctx, m)
				default:
					return nil
				}
			}
		}
	}
}

// Send delivers the critical alerts among alerts now, with retries, and
// returns the first error.
func (w *Webhook) Send(ctx context.Context, alerts []schemas.Alert) error {
	w.setup()
	var first error
	for _, m := range w.messages(alerts) {
		if err := w.deliver(ctx, m); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// permanentError is a refusal that another attempt would not change.
type permanentError struct{ error }

// deliver posts m, retrying failures that may pass, and counts the outcome.
func (w *Webhook) deliver(ctx context.Context, m Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		failedAlerts.Add(float64(len(m.Alerts)))
		return fmt.Errorf("cannot encode alert webhook message: %w", err)
	}
	delay := w.Backoff
	for attempt := 1; ; attempt++ {
		err = w.post(ctx, body)
		if err == nil {
			sentAlerts.Add(float64(len(m.Alerts)))
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) || attempt >= w.Attempts || ctx.Err() != nil {
			break
		}
		w.Log.Debug("alert webhook attempt failed; retrying", zap.Int("attempt", attempt),
			zap.Duration("backoff", delay), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
	failedAlerts.Add(float64(len(m.Alerts)))
	err = fmt.Errorf("cannot deliver %d %s alerts to the alert webhook: %w", len(m.Alerts), m.GroupLabels["alertname"], err)
	w.Log.Warn("alert webhook gave up", zap.Int("alerts", len(m.Alerts)), zap.Error(err))
	return err
}

func (w *Webhook) post(ctx context.Context, body []byte) error {
	code, _, err := postJSON(ctx, w.Client, w.Timeout, w.URL, body)
	switch {
	case errors.Is(err, errBadRequest):
		return permanentError{err}
	case err != nil:
		return err
	case code/100 == 2:
		return nil
	case code >= 500 || code == http.StatusTooManyRequests:
		return fmt.Errorf("receiver answered %d %s", code, http.StatusText(code))
	default:
		return permanentError{fmt.Errorf("receiver refused the message: %d %s", code, http.StatusText(code))}
	}
}

// errBadRequest marks a request that could not even be made.
var errBadRequest = errors.New("cannot make the request")

// postJSON posts body to endpoint within timeout and returns the status
// code and the start of the answer. Its errors never hold the URL, which
// may carry credentials.
func postJSON(ctx context.Context, c *http.Client, timeout time.Duration, endpoint string, body []byte) (int, string, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("%w: %v", errBadRequest, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rigwatch")
	resp, err := c.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the URL
		}
		return 0, "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, strings.TrimSpace(string(msg)), nil
}

// Message is the body of one webhook call, as Alertmanager sends it.
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert in a Message, as Alertmanager sends it.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // zero: still firing
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// messages turns the critical alerts among as into one message per kind,
// kinds in the order they first appear.
func (w *Webhook) messages(as []schemas.Alert) []Message {
	var out []Message
	idx := map[string]int{}
	for i := range as {
		a := &as[i]
		if a.Severity != "critical" {
			continue
		}
		k, ok := idx[a.Kind]
		if !ok {
			k = len(out)
			idx[a.Kind] = k
			out = append(out, Message{
				Version:     "4",
				GroupKey:    fmt.Sprintf("{}:{alertname=%q}", a.Kind),
				Status:      "firing",
				Receiver:    w.Receiver,
				GroupLabels: map[string]string{"alertname": a.Kind},
				ExternalURL: w.ExternalURL,
			})
		}
		out[k].Alerts = append(out[k].Alerts, w.alert(a))
	}
	for i := range out {
		out[i].CommonLabels = common(out[i].Alerts, func(a *Alert) map[string]string { return a.Labels })
		out[i].CommonAnnotations = common(out[i].Alerts, func(a *Alert) map[string]string { return a.Annotations })
	}
	return out
}

func (w *Webhook) alert(a *schemas.Alert) Alert {
	labels := map[string]string{"alertname": a.Kind, "severity": a.Severity,
		"entity_type": a.EntityType, "entity_id": a.EntityID}
	for k, v := range map[string]string{"meter_id": a.MeterID, "feeder_id": a.FeederID, "site_id": a.SiteID,
		"operator_id": a.OperatorID, "rig_id": a.RigID, "license_id": a.LicenseID, "tx_id": a.TxID, "oblast": a.Oblast} {
		if v != "" {
			labels[k] = v
		}
	}
	ann := map[string]string{"summary": a.Summary, "alert_id": a.AlertID,
		"window_start": a.WindowStart.UTC().Format(time.RFC3339), "window_end": a.WindowEnd.UTC().Format(time.RFC3339)}
	if a.ExcessKWh != nil {
		ann["excess_kwh"] = strconv.FormatFloat(*a.ExcessKWh, 'f', 1, 64)
	}
	if a.EstimatedValueKZT != nil {
		ann["estimated_value_kzt"] = strconv.FormatFloat(*a.EstimatedValueKZT, 'f', 0, 64)
	}
	gen := ""
	if w.ExternalURL != "" {
		gen = w.ExternalURL + "/#/alert/" + url.PathEscape(a.AlertID)
	}
	return Alert{Status: "firing", Labels: labels, Annotations: ann, StartsAt: a.DetectedAt.UTC(),
		GeneratorURL: gen, Fingerprint: fingerprint(labels)}
}

// fingerprint hashes labels the way Alertmanager does (FNV-1a over sorted
// names and values, each followed by 0xff), so receivers that deduplicate
// by fingerprint see the same value Alertmanager would give.
func fingerprint(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	h := fnv.New64a()
	for _, k := range names {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// common returns the pairs every alert has.
func common(as []Alert, get func(*Alert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(as) == 0 {
		return out
	}
	for k, v := range get(&as[0]) {
		out[k] = v
	}
	for i := 1; i < len(as); i++ {
		m := get(&as[i])
		for k, v := range out {
			if m[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}
