package main

import (
	"context"
	"strings"

	"github.com/rigwatch/rigwatch/notify"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// newAlertmanager builds the client that pushes alerts to the Alertmanagers
// of --alertmanager: it re-sends from the alerts table, and pushes at once
// the alert changes in updates (the API's broadcast: new findings, and
// acknowledgements and resolutions by people).
func newAlertmanager(rt *runtime, externalURL string, updates <-chan schemas.Alert) (*notify.Alertmanager, error) {
	urls, err := notify.ParseAlertmanagerURLs(rt.cfg.AlertmanagerURL)
	if err != nil {
		return nil, err
	}
	am := &notify.Alertmanager{URLs: urls, ExternalURL: externalURL, Updates: updates, Resend: rt.cfg.AlertmanagerResend, Log: rt.log,
		Alerts: func(ctx context.Context, status string, offset, limit int) ([]schemas.Alert, error) {
			return rt.store.ListAlerts(ctx, store.AlertFilter{Status: status, Order: "-updated_at", Offset: offset, Limit: limit})
		},
		EventTime: rt.store.LatestReadingTime,
	}
	return am, am.Validate()
}

// externalURL is where people reach the web UI served at addr.
func externalURL(rt *runtime, addr string) string {
	if rt.cfg.ExternalURL != "" {
		return strings.TrimRight(rt.cfg.ExternalURL, "/")
	}
	return "http://" + addr
}
