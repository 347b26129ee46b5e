package web_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rigwatch/rigwatch/api"
	"github.com/rigwatch/rigwatch/internal/browsertest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/notify"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
	"github.com/rigwatch/rigwatch/web"
)

// -screenshots (or RIGWATCH_SCREENSHOTS=1) rewrites docs/screenshots/*.png;
// without it CI leaves the committed pictures alone.
var screenshots = flag.Bool("screenshots", false, "write docs/screenshots/*.png from the browser tests")

// uiEnv is a real rigwatch HTTP server (API and UI, mounted as serve mounts
// them) on a real ClickHouse database holding the scenario.
type uiEnv struct {
	st     *store.Store
	bc     *notify.Broadcaster
	url    string
	scen   *scenario
	tokens map[string]string // role -> token
}

func newUIEnv(t *testing.T) *uiEnv {
	t.Helper()
	e := startUIEnv(t, buildScenario())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := e.st
	if opened, err := st.UpsertAlerts(ctx, seededAlerts()); err != nil || len(opened) != len(seededAlerts()) {
		t.Fatalf("seeding alerts: %d opened, %v", len(opened), err)
	}
	for id, change := range map[string][2]string{
		"ps-" + operatorID + "-2025-10-08": {schemas.StatusAcknowledged, "asked the operator for its October purchase records"},
		"op-KOREM-2025-10-03-77":           {schemas.StatusResolved, "marketplace confirmed a data-entry error, corrected to 1.0 MWh"},
	} {
		if _, err := st.SetAlertStatus(ctx, id, change[0], change[1], "a.serikbayev"); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// startUIEnv stores scenario s in a database of the test's own and serves
// the API and UI on it, with a token per role.
func startUIEnv(t *testing.T, s *scenario) *uiEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := testenv.Store(t)
	if err := st.WriteBatch(ctx, s.batch); err != nil {
		t.Fatalf("cannot write the scenario: %v", err)
	}
	ix, err := registry.New(registry.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.LoadRegistry(ctx, ix); err != nil {
		t.Fatalf("cannot load the registry: %v", err)
	}
	e := &uiEnv{st: st, bc: notify.NewBroadcaster(0), scen: s, tokens: map[string]string{}}
	for _, role := range []string{store.RoleOperator, store.RoleInvestigator} {
		tok, _, err := st.CreateToken(ctx, "ui-"+role, role)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[role] = tok
	}
	srv := api.New(api.Config{Addr: "127.0.0.1:0"}, nil)
	if err := api.Mount(srv, api.Deps{Store: st, Registry: ix, Broadcaster: e.bc, Version: "test", TariffKZTPerKWh: tariffKZT}); err != nil {
		t.Fatal(err)
	}
	srv.Handle("/", web.Handler())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	e.url = "http://" + srv.Addr()
	return e
}

// getJSON calls the API as role and decodes the answer into v.
func (e *uiEnv) getJSON(t *testing.T, role, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[role])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// browser starts headless Chromium for the test.
func browser(t *testing.T) context.Context { return browsertest.Start(t) }

// tab opens a new tab in the browser, signed in with token via the #token=
// link the demo prints, and reports the page's JavaScript errors.
func tab(t *testing.T, bctx context.Context, e *uiEnv, role string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	// Start the tab, then collect its console errors and uncaught exceptions.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("cannot open a tab: %v", err)
	}
	var mu sync.Mutex
	var jsErrors []string
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				mu.Lock()
				jsErrors = append(jsErrors, fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, m := range jsErrors {
			t.Errorf("JavaScript error in the UI: %s", m)
		}
	})
	run(t, ctx, 30*time.Second,
		chromedp.Navigate(e.url+"/#token="+e.tokens[role]),
		chromedp.WaitVisible(chromedp.CSS(`#board[data-loaded="1"]`)),
	)
	who := text(t, ctx, "#who")
	if !strings.Contains(who, role) {
		t.Errorf("header shows %q, want the role %s from /whoami", who, role)
	}
	hash := eval[string](t, ctx, `location.hash`)
	if strings.Contains(hash, "token") {
		t.Errorf("the token stays in the address bar: %q", hash)
	}
	return ctx
}

// run runs actions with a timeout, failing the test with what was being done.
func run(t *testing.T, ctx context.Context, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// value runs one action that returns a value.
func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return value(t, ctx, chromedp.Evaluate[T](expr))
}

// text reads an element's visible text.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return value(t, ctx, chromedp.Text(chromedp.CSS(sel)))
}

// shoot saves the viewport as docs/screenshots/name.png when asked to.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !*screenshots && os.Getenv("RIGWATCH_SCREENSHOTS") != "1" {
		return
	}
	// Let charts and row highlights settle.
	run(t, ctx, 5*time.Second, chromedp.Sleep(300*time.Millisecond))
	png := value(t, ctx, chromedp.CaptureScreenshot())
	p := filepath.Join("..", "docs", "screenshots", name+".png")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", p)
}

// goTo moves the signed-in tab to another page of the UI (a fragment
// change, as a click on a link does).
func goTo(t *testing.T, ctx context.Context, e *uiEnv, fragment, waitFor string) {
	t.Helper()
	run(t, ctx, 30*time.Second, chromedp.Navigate(e.url+"/"+fragment), chromedp.WaitVisible(chromedp.CSS(waitFor)))
}

// chartInfo is what the UI records about a chart it drew.
type chartInfo struct {
	Points int `json:"points"`
	Series []struct {
		Label  string `json:"label"`
		Points int    `json:"points"`
	} `json:"series"`
	Canvas bool `json:"canvas"`
	Width  int  `json:"width"`
}

func readChart(t *testing.T, ctx context.Context, name string) chartInfo {
	t.Helper()
	js := fmt.Sprintf(`(function(){ var c = rigwatch.charts[%q] || {points: 0, series: []};
		var cv = document.querySelector('#chart-%s canvas');
		return {points: c.points, series: c.series, canvas: !!cv, width: cv ? cv.width : 0}; })()`, name, name)
	return eval[chartInfo](t, ctx, js)
}

func checkChart(t *testing.T, ctx context.Context, name string, wantPoints int) {
	t.Helper()
	run(t, ctx, 20*time.Second, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#chart-%s[data-rendered="1"] canvas`, name))))
	c := readChart(t, ctx, name)
	if !c.Canvas || c.Width == 0 {
		t.Errorf("chart %s: no canvas drawn (%+v)", name, c)
	}
	if c.Points != wantPoints {
		t.Errorf("chart %s: %d points, want %d", name, c.Points, wantPoints)
	}
	for _, s := range c.Series {
		if s.Points == 0 {
			t.Errorf("chart %s: series %q has no points", name, s.Label)
		}
	}
}

// TestBrowser drives the UI in headless Chromium against a real server and
// ClickHouse: a new alert appears on the board live, acknowledging it in
// the UI changes it in the API, the feeder and site charts draw the stored
// readings, and the calculator shows rigwatch calc's figures.
func TestBrowser(t *testing.T) {
	browsertest.Path(t) // fail before starting anything when it is missing
	e := newUIEnv(t)
	bctx := browser(t)

	t.Run("alert appears on the board without a reload, acknowledge reaches the API", func(t *testing.T) {
		ctx := tab(t, bctx, e, store.RoleOperator)
		run(t, ctx, 20*time.Second, chromedp.WaitVisible(chromedp.CSS(`body[data-stream="live"]`)))
		// The stream is subscribed: from here on a published alert reaches this page.
		deadline := time.Now().Add(10 * time.Second)
		for e.bc.Subscribers() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the page's EventSource never subscribed to the alert stream")
			}
			time.Sleep(50 * time.Millisecond)
		}
		eval[string](t, ctx, `window.__sameDocument = 'yes'`)
		rowsBefore := eval[int](t, ctx, `document.querySelectorAll('#alert-rows tr').length`)
		if rowsBefore != len(seededAlerts()) {
			t.Errorf("board shows %d alerts before, want %d", rowsBefore, len(seededAlerts()))
		}

		// What the detector loop does with a new finding: store, then publish.
		alert := e.scen.liveAlert()
		opened, err := e.st.UpsertAlerts(context.Background(), []schemas.Alert{alert})
		if err != nil || len(opened) != 1 {
			t.Fatalf("UpsertAlerts: %d opened, %v", len(opened), err)
		}
		published := time.Now()
		e.bc.Publish(opened)

		row := fmt.Sprintf(`#alert-rows tr[data-alert-id=%q]`, alert.AlertID)
		run(t, ctx, 20*time.Second, chromedp.WaitVisible(chromedp.CSS(row+`.new`)))
		t.Logf("alert on the board %v after publishing", time.Since(published).Round(time.Millisecond))
		first := eval[string](t, ctx, `document.querySelector('#alert-rows tr').dataset.alertId`)
		same := eval[string](t, ctx, `window.__sameDocument || 'reloaded'`)
		rowText := text(t, ctx, row)
		if same != "yes" {
			t.Error("the page was reloaded to show the alert")
		}
		if first != alert.AlertID {
			t.Errorf("top row is %q, want the new alert %q", first, alert.AlertID)
		}
		for _, want := range []string{"critical", "feeder_imbalance", feederID, "East Kazakhstan", "open"} {
			if !strings.Contains(strings.ToLower(rowText), strings.ToLower(want)) {
				t.Errorf("row %q lacks %q", rowText, want)
			}
		}
		shoot(t, ctx, "board")

		// Acknowledge it with a note through the UI.
		const note = "crew 7 sent to EKZ-F017, ETA 40 min"
		run(t, ctx, 20*time.Second,
			chromedp.Click(chromedp.CSS(row+` button.ack`)),
			chromedp.WaitVisible(chromedp.CSS(`#note-dialog[open] #note-text`)),
			chromedp.SendKeys(chromedp.CSS(`#note-text`), note),
			chromedp.Click(chromedp.CSS(`#note-ok`)),
			chromedp.WaitVisible(chromedp.CSS(row+`[data-status="acknowledged"]`)))
		var got api.AlertDetail
		e.getJSON(t, store.RoleOperator, "/api/v1/alerts/"+alert.AlertID, &got)
		if got.Status != schemas.StatusAcknowledged || got.Note != note {
			t.Errorf("API after acknowledging in the UI: status %q note %q, want acknowledged %q", got.Status, got.Note, note)
		}
		if n := len(got.Events); n == 0 || got.Events[n-1].To != schemas.StatusAcknowledged || got.Events[n-1].Who != "ui-operator" {
			t.Errorf("status history %+v: want the acknowledgement by ui-operator last", got.Events)
		}

		// The detail page shows the history and the evidence figures.
		goTo(t, ctx, e, "#/alert/"+alert.AlertID, `#alert-detail #alert-events`)
		hist := text(t, ctx, `#alert-events`)
		if !strings.Contains(hist, note) || !strings.Contains(hist, "ui-operator") {
			t.Errorf("status history on the page: %q", hist)
		}
		shoot(t, ctx, "alert")
	})

	t.Run("feeder chart renders the stored readings", func(t *testing.T) {
		ctx := tab(t, bctx, e, store.RoleInvestigator)
		goTo(t, ctx, e, "#/feeders?since=30d", `#feeder-ranking tbody tr`)
		top := eval[string](t, ctx, `document.querySelector('#feeder-ranking tbody tr').dataset.feederId`)
		if top != feederID {
			t.Errorf("top of the feeder ranking is %q, want %s", top, feederID)
		}
		shoot(t, ctx, "feeders")

		goTo(t, ctx, e, "#/search?q=SJP-22-410007", `#search-results tbody tr`)
		if hits := text(t, ctx, `#search-results`); !strings.Contains(hits, "RIG-UST04-007") || !strings.Contains(hits, siteID) {
			t.Errorf("registry search for a serial shows %q, want rig RIG-UST04-007 at %s", hits, siteID)
		}

		goTo(t, ctx, e, "#/feeder/"+feederID+"?since=3d", `#feeder`)
		// 72 hours of readings, hourly.
		checkChart(t, ctx, "balance", 72)
		checkChart(t, ctx, "residual", 72)
		meters := eval[int](t, ctx, `document.querySelectorAll('#feeder-meters tbody tr').length`)
		if want := e.scen.meterCount + 1; meters != want {
			t.Errorf("feeder page lists %d meters, want %d", meters, want)
		}
		shoot(t, ctx, "feeder")

		goTo(t, ctx, e, "#/site/"+siteID+"?since=7d", `#site`)
		checkChart(t, ctx, "site-power", 72)
		checkChart(t, ctx, "site-daily", 3) // 72 hourly buckets from 00:00 UTC+5: three settlement days
		shoot(t, ctx, "site")

		goTo(t, ctx, e, "#/operator/"+operatorID+"?since=7d", `#operator`)
		checkChart(t, ctx, "operator-power", 72)
		shoot(t, ctx, "operator")
	})

	t.Run("calculator shows rigwatch calc's figures", func(t *testing.T) {
		ctx := tab(t, bctx, e, store.RoleOperator)
		goTo(t, ctx, e, "#/calc", `#calc-form`)
		run(t, ctx, 20*time.Second,
			chromedp.SendKeys(chromedp.CSS(`#calc-machines`), "1000"),
			chromedp.SendKeys(chromedp.CSS(`#calc-watts`), "3250"),
			chromedp.SetValue(chromedp.CSS(`#calc-hours`), "24"),
			chromedp.SetValue(chromedp.CSS(`#calc-days`), "30"),
			chromedp.Click(chromedp.CSS(`#calc-go`)),
			chromedp.WaitVisible(chromedp.CSS(`#calc-result[data-done="1"]`)))
		kw, mwh, tx := text(t, ctx, `#calc-kw .big`), text(t, ctx, `#calc-mwh .big`), text(t, ctx, `#calc-tx .big`)
		if kw != "3,250 kW" || mwh != "2,340 MWh" || tx != "2,340 transactions" {
			t.Errorf("calculator shows %q / %q / %q, want 3,250 kW / 2,340 MWh / 2,340 transactions", kw, mwh, tx)
		}
		shoot(t, ctx, "calculator")
	})
}
