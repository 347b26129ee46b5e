package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rigwatch/rigwatch/internal/browsertest"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// TestPagesFollowTheData drives the UI over data whose event time runs two
// days ahead of the wall clock, as `make demo`'s does: a feeder opened
// from its critical alert on the board shows that alert's window (with a
// day before it), its charts full and the energy beyond normal loss; pages
// opened without an alert end at the newest data, not at the wall clock.
func TestPagesFollowTheData(t *testing.T) {
	browsertest.Path(t)
	s := buildScenario()
	shift := time.Now().UTC().Truncate(time.Hour).Add(48 * time.Hour).Sub(scenStart)
	s.shift(shift)
	e := startUIEnv(t, s)
	imb := shiftAlert(s.liveAlert(), shift)
	over := shiftAlert(seededAlerts()[4], shift)
	if over.Kind != schemas.KindOverCapacity {
		t.Fatalf("seeded alert 4 is %s, want over_capacity", over.Kind)
	}
	if opened, err := e.st.UpsertAlerts(context.Background(), []schemas.Alert{imb, over}); err != nil || len(opened) != 2 {
		t.Fatalf("UpsertAlerts: %d opened, %v", len(opened), err)
	}
	end := scenEnd.Add(shift)
	bctx := browser(t)
	ctx := tab(t, bctx, e, store.RoleInvestigator)

	// pageWindow reads the window a page shows, as the API answered it.
	pageWindow := func(sel string) (time.Time, time.Time) {
		t.Helper()
		w := eval[struct{ From, To string }](t, ctx, fmt.Sprintf(`(function(){ var d = document.querySelector(%q).dataset; return {From: d.from || '', To: d.to || ''}; })()`, sel))
		from, err1 := time.Parse(time.RFC3339, w.From)
		to, err2 := time.Parse(time.RFC3339, w.To)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s shows no window: %+v", sel, w)
		}
		return from, to
	}
	wantWindow := func(what string, from, to, wantFrom, wantTo time.Time) {
		t.Helper()
		if !from.Equal(wantFrom) || !to.Equal(wantTo) {
			t.Errorf("%s shows %s .. %s, want %s .. %s", what, from, to, wantFrom, wantTo)
		}
	}

	// From the board: the critical feeder_imbalance's entity link.
	row := fmt.Sprintf(`#alert-rows tr[data-alert-id=%q]`, imb.AlertID)
	run(t, ctx, 20*time.Second,
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS(row+` a[href^="#/feeder/"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#feeder[data-from]`)))
	from, to := pageWindow(`#feeder`)
	wantWindow("the feeder page opened from the alert", from, to, imb.WindowStart.Add(-24*time.Hour), imb.WindowEnd)
	hours := int(imb.WindowEnd.Sub(imb.WindowStart.Add(-24*time.Hour)) / time.Hour)
	checkChart(t, ctx, "balance", hours)
	checkChart(t, ctx, "residual", hours)
	if beyond := text(t, ctx, `#card-beyond-loss .v`); beyond == "0" || beyond == "—" {
		t.Errorf("beyond normal loss shows %q on the page of a critical feeder_imbalance", beyond)
	}
	if note := text(t, ctx, `#page-window`); !strings.Contains(note, imb.AlertID) {
		t.Errorf("the page does not say it shows the alert's window: %q", note)
	}

	// The same feeder without an alert: the newest data's last 7 days.
	goTo(t, ctx, e, "#/feeder/"+feederID, `#feeder[data-from]`)
	from, to = pageWindow(`#feeder`)
	wantWindow("the feeder page", from, to, end.Add(-7*24*time.Hour), end)
	checkChart(t, ctx, "balance", 72)

	// The over_capacity alert's site, opened from the alert's page.
	goTo(t, ctx, e, "#/alert/"+over.AlertID, `#alert-detail`)
	run(t, ctx, 20*time.Second,
		chromedp.Click(chromedp.CSS(`#alert-detail a[href^="#/site/"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#site[data-from]`)))
	from, to = pageWindow(`#site`)
	wantWindow("the site page opened from the alert", from, to, over.WindowStart.Add(-24*time.Hour), over.WindowEnd)
	checkChart(t, ctx, "site-power", int(over.WindowEnd.Sub(over.WindowStart.Add(-24*time.Hour))/time.Hour))

	goTo(t, ctx, e, "#/operator/"+operatorID, `#operator[data-from]`)
	from, to = pageWindow(`#operator`)
	wantWindow("the operator page", from, to, end.Add(-30*24*time.Hour), end)
	checkChart(t, ctx, "operator-power", 72)

	goTo(t, ctx, e, "#/feeders", `#feeder-ranking tbody tr`)
	from, to = pageWindow(`#feeders`)
	wantWindow("the feeder ranking", from, to, end.Add(-30*24*time.Hour), end)
	if top := eval[string](t, ctx, `document.querySelector('#feeder-ranking tbody tr').dataset.feederId`); top != feederID {
		t.Errorf("top of the feeder ranking is %q, want %s", top, feederID)
	}
}
