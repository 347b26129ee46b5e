package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

var alertsOpened = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "rigwatch_alerts_opened_total", Help: "Alerts opened, by kind and severity.",
}, []string{"kind", "severity"})

// Store keeps alerts; *store.Store is one. Its people's state (status,
// note) is its own business: a Sink only writes findings.
type Store interface {
	UpsertAlertsDetail(ctx context.Context, alerts []schemas.Alert) (store.UpsertResult, error)
	CloseAlerts(ctx context.Context, ids []string) ([]schemas.Alert, error)
}

// Sink is where alerts go out of a process: the detector's findings to the
// alerts table, and every change of an alert (a finding opened, updated or
// closed by the detector here, or acknowledged or resolved by a person
// through this process's API) to the alerts topic, which every process's
// Board follows into its own live board and Alertmanager client; new and
// newly critical findings also to Notify (the webhook). It remembers the
// final state of every finding it was given, for replay's alerts file.
// Safe for concurrent use; set the fields before the first call.
type Sink struct {
	// Store keeps the findings; required.
	Store Store
	// Topic writes the alerts topic; nil: no broker (replay from files),
	// and changes go to Publish instead.
	Topic *kafka.Writer
	// Publish, when there is no Topic, hands changes to this process's
	// board; nil: nowhere.
	Publish func([]schemas.Alert)
	// Notify is told of opened alerts and of those that became critical;
	// it must not block. Nil: no one.
	Notify func(context.Context, []schemas.Alert)
	// Log receives what the sink did; nil: nothing.
	Log *zap.Logger

	mu    sync.Mutex
	final map[string]schemas.Alert
}

func (s *Sink) log() *zap.Logger {
	if s.Log == nil {
		return zap.NewNop()
	}
	return s.Log
}

// Emit stores the detector's current findings (see
// store.UpsertAlertsDetail) and sends out what changed.
func (s *Sink) Emit(ctx context.Context, alerts []schemas.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	res, err := s.Store.UpsertAlertsDetail(ctx, alerts)
	if err != nil {
		return err
	}
	for _, a := range res.Opened {
		alertsOpened.WithLabelValues(a.Kind, a.Severity).Inc()
	}
	// People are told of new findings and of findings that became critical.
	if told := append(append([]schemas.Alert(nil), res.Opened...), res.Escalated...); s.Notify != nil && len(told) > 0 {
		s.Notify(ctx, told)
	}
	if err := s.Announce(ctx, append(append([]schemas.Alert(nil), res.Opened...), res.Updated...)); err != nil {
		return err
	}
	s.mu.Lock()
	if s.final == nil {
		s.final = map[string]schemas.Alert{}
	}
	for _, a := range alerts {
		s.final[a.AlertID] = a
	}
	s.mu.Unlock()
	if len(res.Opened) > 0 {
		s.log().Info("alerts opened", zap.Int("opened", len(res.Opened)), zap.Int("updated", len(res.Updated)))
	}
	return nil
}

// Close marks the detector's findings ids as closed (they stopped holding;
// see store.CloseAlerts) and sends out those it changed.
func (s *Sink) Close(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	closed, err := s.Store.CloseAlerts(ctx, ids)
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, a := range closed {
		if _, ok := s.final[a.AlertID]; ok {
			s.final[a.AlertID] = a
		}
	}
	s.mu.Unlock()
	return s.Announce(ctx, closed)
}

// Announce sends changed alerts out: to the alerts topic, keyed by
// alert_id, or without one to Publish. The API announces people's changes
// here, so every process's board shows them.
func (s *Sink) Announce(ctx context.Context, changed []schemas.Alert) error {
	if len(changed) == 0 {
		return nil
	}
	if s.Topic == nil {
		if s.Publish != nil {
			s.Publish(changed)
		}
		return nil
	}
	msgs := make([]kafka.Message, len(changed))
	for i := range changed {
		v, err := json.Marshal(&changed[i])
		if err != nil {
			return err
		}
		msgs[i] = kafka.Message{Key: []byte(changed[i].AlertID), Value: v}
	}
	if err := s.Topic.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("cannot publish %d alerts: %w", len(msgs), ingest.WriteError(err))
	}
	return nil
}

// Final returns the final state of every finding the sink was given, by
// kind, then detection time, then id.
func (s *Sink) Final() []schemas.Alert {
	s.mu.Lock()
	all := make([]schemas.Alert, 0, len(s.final))
	for _, a := range s.final {
		all = append(all, a)
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if all[i].Kind != all[j].Kind {
			return all[i].Kind < all[j].Kind
		}
		if !all[i].DetectedAt.Equal(all[j].DetectedAt) {
			return all[i].DetectedAt.Before(all[j].DetectedAt)
		}
		return all[i].AlertID < all[j].AlertID
	})
	return all
}

// WriteFile writes Final as JSON Lines to path and returns how many.
func (s *Sink) WriteFile(path string) (int, error) {
	all := s.Final()
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("cannot write alerts: %w", err)
	}
	enc := json.NewEncoder(f)
	for i := range all {
		if err := enc.Encode(&all[i]); err != nil {
			f.Close()
			return 0, fmt.Errorf("cannot write alerts to %s: %w", path, err)
		}
	}
	return len(all), f.Close()
}
