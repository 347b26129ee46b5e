package api

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/investigate"
)

// TestPagesFollowTheData: a page's default window ends at the newest
// stored reading whether the wall clock runs behind the data (a demo at
// accelerated event time) or far ahead of it (a replay of last year); a
// page opened from an alert covers that alert's window with a day before.
func TestPagesFollowTheData(t *testing.T) {
	f := newFixture(t)
	tok := f.tokens["investigator"]
	for _, clock := range []struct {
		name string
		now  time.Time
	}{
		{"clock behind the data", t0.Add(-30 * 24 * time.Hour)},
		{"clock a year ahead of the data", t1.Add(400 * 24 * time.Hour)},
	} {
		t.Run(clock.name, func(t *testing.T) {
			h, err := NewHandler(Deps{Store: f.st, Registry: f.ix, Version: "test", Now: func() time.Time { return clock.now }})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			g := &fixture{st: f.st, srv: srv}
			get := func(path string, v any) {
				t.Helper()
				code, body := g.do(t, "GET", path, tok, "")
				if code != 200 {
					t.Fatalf("GET %s: %d %s", path, code, body)
				}
				if err := json.Unmarshal([]byte(body), v); err != nil {
					t.Fatal(err)
				}
			}
			var fd investigate.FeederDetail
			get("/api/v1/feeders/F1", &fd)
			if !fd.To.Equal(t1) || !fd.From.Equal(t1.Add(-7*24*time.Hour)) || len(fd.Hourly) != 48 || fd.BeyondLossKWh <= 0 {
				t.Errorf("feeder page: %s..%s, %d hours, %.1f kWh beyond loss; want ..%s, 48 hours, energy beyond loss",
					fd.From, fd.To, len(fd.Hourly), fd.BeyondLossKWh, t1)
			}
			var sd investigate.SiteDetail
			get("/api/v1/sites/S1", &sd)
			if !sd.To.Equal(t1) || len(sd.Hourly) != 48 {
				t.Errorf("site page: ..%s, %d hours; want ..%s, 48 hours", sd.To, len(sd.Hourly), t1)
			}
			var od investigate.OperatorDetail
			get("/api/v1/operators/OP1", &od)
			if !od.To.Equal(t1) || len(od.Daily) == 0 {
				t.Errorf("operator page: ..%s, %d days; want ..%s and days", od.To, len(od.Daily), t1)
			}
			var rank investigate.FeederRanking
			get("/api/v1/feeders", &rank)
			if !rank.To.Equal(t1) || len(rank.Top) != 2 {
				t.Errorf("feeder ranking: ..%s, %d feeders; want ..%s, 2", rank.To, len(rank.Top), t1)
			}
			var al AlertList
			get("/api/v1/alerts?since=1d", &al)
			if len(al.Alerts) != 3 {
				t.Errorf("alerts since 1d before the newest data: %d, want 3", len(al.Alerts))
			}

			// Opened from alert A1 (window t0..t1): that window, a day before it.
			get("/api/v1/feeders/F1?alert=A1", &fd)
			if !fd.From.Equal(t0.Add(-investigate.AlertContext)) || !fd.To.Equal(t1) || len(fd.Hourly) != 48 {
				t.Errorf("feeder page of alert A1: %s..%s, %d hours; want %s..%s, 48 hours", fd.From, fd.To, len(fd.Hourly), t0.Add(-investigate.AlertContext), t1)
			}
			get("/api/v1/sites/S1?alert=A2", &sd)
			if !sd.From.Equal(t0.Add(-investigate.AlertContext)) || !sd.To.Equal(t1) {
				t.Errorf("site page of alert A2: %s..%s", sd.From, sd.To)
			}
			if code, body := g.do(t, "GET", "/api/v1/feeders/F1?alert=A1&since=2d", tok, ""); code != 400 {
				t.Errorf("alert with since: %d %s, want 400", code, body)
			}
			if code, body := g.do(t, "GET", "/api/v1/operators/OP1?alert=NO-SUCH", tok, ""); code != 404 {
				t.Errorf("unknown alert: %d %s, want 404", code, body)
			}
		})
	}
}
