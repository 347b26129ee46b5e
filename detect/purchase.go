package detect

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// daySums is one operator's settled local day.
type daySums struct{ metered, bought float64 }

// purchases settles every local day that ends at an evaluation of this
// call, raising purchase_shortfall per operator for runs of short days and
// for the month to date, and raises oversized_purchase for every purchase
// above MaxPurchaseMWh made in [from, to).
func (r *run) purchases(ctx context.Context, src Series, from, to time.Time) error {
	g := r.g
	ps, err := src.Purchases(ctx, g.hourTime(r.dayOf(r.hFirst)), to)
	if err != nil {
		return fmt.Errorf("cannot read purchases: %w", err)
	}
	bought := map[string]map[int]float64{} // operator -> day start hour -> kWh
	for _, p := range ps {
		ds := r.dayOf(g.hourOf(p.TS))
		if bought[p.OperatorID] == nil {
			bought[p.OperatorID] = map[int]float64{}
		}
		bought[p.OperatorID][ds] += p.MWh * 1000
	}
	var siteMeters []int32
	for mi := range g.ids {
		if r.known[mi] && r.meta[mi].Role == schemas.RoleSite && r.meta[mi].SiteID != "" {
			siteMeters = append(siteMeters, int32(mi))
		}
	}
	for h := r.hFirst; h <= r.hLast; h++ {
		if r.hod(h) != 23 {
			continue
		}
		ds := h - 23
		dayStart, dayEnd := g.hourTime(ds), g.hourTime(ds+24)
		metered := map[string]float64{}
		for _, mi := range siteMeters {
			var e float64
			var c int
			for k := ds; k <= h; k++ {
				e += float64(g.e[mi][k])
				c += int(g.cov[mi][k])
			}
			if c == 0 {
				continue
			}
			// unmetered hours of the day at the day's mean power
			e *= 86400 / float64(c)
			op, _ := r.siteOwner(r.meta[mi].SiteID, dayEnd.Add(-time.Second))
			if op != "" {
				metered[op] += e
			}
		}
		ops := make([]string, 0, len(metered))
		for op := range metered {
			ops = append(ops, op)
		}
		for op := range bought {
			if _, ok := metered[op]; !ok {
				ops = append(ops, op)
			}
		}
		slices.Sort(ops)
		for _, op := range ops {
			d := daySums{metered: metered[op], bought: bought[op][ds]}
			if r.e.days[op] == nil {
				r.e.days[op] = map[int64]daySums{}
			}
			r.e.days[op][dayStart.Unix()] = d
			r.settle(op, "day", h, dayStart, d)
			y, m, _ := dayStart.In(r.cfg.Location).Date()
			monthStart := time.Date(y, m, 1, 0, 0, 0, 0, r.cfg.Location)
			var mtd daySums
			for t, x := range r.e.days[op] {
				if t >= monthStart.Unix() && t <= dayStart.Unix() {
					mtd.metered += x.metered
					mtd.bought += x.bought
				}
			}
			r.settle(op, "month:"+monthStart.Format("2006-01"), h, monthStart.UTC(), mtd)
		}
	}
	r.oversized(ps, g.hourTime(r.hReport), to)
	return nil
}

// settle judges one operator's settlement period that ends at hour h.
// Consecutive short days form one finding; a month is one finding.
func (r *run) settle(op, period string, h int, start time.Time, d daySums) {
	short := d.metered-d.bought > math.Max(r.cfg.ShortfallTolerance*d.metered, r.cfg.ShortfallMinKWh)
	ep := r.episode(schemas.KindPurchaseShortfall, op, period)
	if ep == nil && !short {
		return
	}
	if ep == nil {
		_, lic := "", ""
		base := schemas.Alert{EntityType: schemas.EntityOperator, OperatorID: op, LicenseID: lic,
			Evidence: map[string]any{"settlement": period}}
		ep = r.open(schemas.KindPurchaseShortfall, op, period, h, start.Unix(), base)
		ep.finish = finishShortfall
	}
	if period == "day" {
		if !short {
			ep.fails = int(r.cfg.CloseAfter / time.Hour)
			r.step(ep, h, false)
			return
		}
		ep.cur.obs += d.metered
		ep.cur.exp += d.bought
		ep.cur.hours += 24
		ep.cur.valid++
	} else {
		ep.cur.obs, ep.cur.exp = d.metered, d.bought
		ep.cur.hours = int((r.tick(h) - start.Unix()) / hourS)
		ep.cur.valid = ep.cur.hours / 24
	}
	r.step(ep, h, short)
}

func finishShortfall(ep *episode, a *schemas.Alert, cfg *Config) {
	s := &ep.held
	excess := math.Max(0, s.obs-s.exp)
	setEnergy(cfg, a, s.obs, s.exp, excess)
	share := 0.0
	if s.obs > 0 {
		share = excess / s.obs
	}
	a.Score = round(100*share, 2)
	a.Severity = schemas.SeverityWarning
	if share >= 0.2 {
		a.Severity = schemas.SeverityCritical
	}
	a.Evidence["short_share"] = round(share, 4)
	a.Evidence["days"] = s.valid
	period := "day by day"
	if ep.variant != "day" {
		period = "in the month to date"
		a.Evidence["month"] = ep.variant[len("month:"):]
	}
	a.Summary = fmt.Sprintf("Operator %s has bought %.0f%% less electricity on the marketplace than its sites metered %s since %s local time: %s not covered by purchases, worth %s.",
		a.OperatorID, 100*share, period, localTime(a.WindowStart, cfg.Location), fmtKWh(excess), fmtKZT(excess*cfg.TariffKZTPerKWh))
}

func (r *run) oversized(ps []schemas.Purchase, from, to time.Time) {
	for _, p := range ps {
		if p.MWh <= r.cfg.MaxPurchaseMWh+1e-9 || p.TS.Before(from) || !p.TS.Before(to) {
			continue
		}
		a := schemas.Alert{AlertID: alertID(schemas.KindOversizedPurchase, p.TxID), Kind: schemas.KindOversizedPurchase,
			EntityType: schemas.EntityPurchase, EntityID: p.TxID, TxID: p.TxID, OperatorID: p.OperatorID, SiteID: p.SiteID,
			WindowStart: p.TS.UTC(), WindowEnd: p.TS.UTC(), DetectedAt: p.TS.UTC(), CreatedAt: p.TS.UTC(), UpdatedAt: p.TS.UTC(),
			Status: schemas.StatusOpen, Score: round(p.MWh, 3), Severity: schemas.SeverityWarning}
		if p.SiteID != "" {
			_, a.LicenseID = r.siteOwner(p.SiteID, p.TS)
		}
		if p.MWh > 2*r.cfg.MaxPurchaseMWh {
			a.Severity = schemas.SeverityCritical
		}
		a.Evidence = map[string]any{"mwh": p.MWh, "limit_mwh": r.cfg.MaxPurchaseMWh}
		if p.PriceKZTPerMWh != nil {
			a.Evidence["price_kzt_per_mwh"] = *p.PriceKZTPerMWh
		}
		a.Summary = fmt.Sprintf("Operator %s bought %.3f MWh in one marketplace transaction %s at %s local time, above the %.0f MWh limit per transaction.",
			p.OperatorID, p.MWh, p.TxID, localTime(p.TS, r.cfg.Location), r.cfg.MaxPurchaseMWh)
		r.out = append(r.out, a)
	}
}
