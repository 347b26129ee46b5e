package detect

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// account is an operator's prepaid energy account: purchases are prepaid
// energy, so its balance is everything bought less everything its sites
// metered, from the start of the data, carried from one settlement period
// to the next.
type account struct {
	metered float64 // kWh metered at its site meters before settled
	bought  float64 // kWh bought before settled + SettlementGrace
	// settled is the end of the last settled local day (Unix s); month and
	// monthStart the metered energy of its month to date.
	settled    int64
	monthStart int64
	month      float64
}

// purchases settles every local day whose grace ends at an evaluation of
// this call and raises purchase_shortfall per operator for the day and for
// the month to date; it raises oversized_purchase for every purchase above
// MaxPurchaseMWh made in [from, to).
//
// A day ending at E is settled at the first evaluation at or after E plus
// SettlementGrace: purchases until then count for it (an operator may buy
// just after midnight for the evening before). Its balance is short when
// the deficit (metered less bought since the start of the data) exceeds
// one transaction's worth (ShortfallMinKWh) and ShortfallTolerance of the
// period's consumption: the day's for the daily finding, the month to
// date's for the monthly one. Buying ahead and buying in whole-MWh lumps
// leave the balance positive and raise nothing.
func (r *run) purchases(ctx context.Context, src Series, from, to time.Time) error {
	g := r.g
	grace := int64(r.cfg.SettlementGrace / time.Second)
	// Purchases this call needs: from the first day settled here (less the
	// grace already counted) to the last evaluation. A day before the grid
	// (before the data) is not settled: the first day settled opens the
	// accounts with everything bought until its grace ended.
	var ends []int64
	for h := r.hFirst; h <= r.hLast; h++ {
		if e := r.tick(h) - grace; e%hourS == 0 && e-86400 >= g.t0 && r.hod(g.hourOf(time.Unix(e, 0))) == 0 {
			ends = append(ends, e)
		}
	}
	ps, err := src.Purchases(ctx, g.hourTime(r.dayOf(r.hFirst)).Add(-24*time.Hour), to.Add(time.Second))
	if err != nil {
		return fmt.Errorf("cannot read purchases: %w", err)
	}
	if len(ends) > 0 {
		if err := r.openAccounts(ctx, src, ends[0]-86400); err != nil {
			return err
		}
	}
	var siteMeters []int32
	for _, s := range r.sites() {
		siteMeters = append(siteMeters, s.mi)
	}
	for _, end := range ends {
		start := end - 86400
		h0 := g.hourOf(time.Unix(start, 0))
		if h0 < 0 {
			continue
		}
		metered := map[string]float64{}
		for _, mi := range siteMeters {
			var e float64
			for k := h0; k < h0+24; k++ {
				e += float64(g.eRow(mi)[k])
			}
			if op, _ := r.siteOwner(r.meta[mi].SiteID, time.Unix(end-1, 0)); op != "" && e > 0 {
				metered[op] += e
			}
		}
		bought := map[string]float64{}
		for _, p := range ps {
			if t := p.TS.Unix(); t >= start+grace && t < end+grace {
				bought[p.OperatorID] += p.MWh * 1000
			}
		}
		var ops []string
		for op := range metered {
			ops = append(ops, op)
		}
		for op := range bought {
			if _, ok := metered[op]; !ok {
				ops = append(ops, op)
			}
		}
		for op := range r.e.accounts {
			if _, ok := metered[op]; !ok {
				if _, ok := bought[op]; !ok {
					ops = append(ops, op)
				}
			}
		}
		slices.Sort(ops)
		hEnd := g.hourOf(time.Unix(end+grace, 0)) - 1 // the evaluation that settles it
		for _, op := range ops {
			acc := r.e.accounts[op]
			if acc == nil {
				acc = &account{settled: start}
				r.e.accounts[op] = acc
			}
			if acc.settled != start {
				continue // settled already (a call that overlapped)
			}
			y, m, _ := time.Unix(start, 0).In(r.cfg.Location).Date()
			ms := time.Date(y, m, 1, 0, 0, 0, 0, r.cfg.Location).Unix()
			if acc.monthStart != ms {
				acc.monthStart, acc.month = ms, 0
			}
			acc.metered += metered[op]
			acc.bought += bought[op]
			acc.month += metered[op]
			acc.settled = end
			r.settle(op, "day", hEnd, start, end, acc, metered[op])
			r.settle(op, "month:"+time.Unix(ms, 0).In(r.cfg.Location).Format("2006-01"), hEnd, ms, end, acc, acc.month)
		}
	}
	r.oversized(ps, g.hourTime(r.hReport), to)
	return nil
}

// openAccounts sets the balance of every operator as of local day start
// start (purchases until start plus the grace counting), from the data
// before it, unless the engine carries it from the previous call.
func (r *run) openAccounts(ctx context.Context, src Series, start int64) error {
	if len(r.e.accounts) > 0 {
		for _, acc := range r.e.accounts {
			if acc.settled == start {
				return nil
			}
		}
	}
	r.e.accounts = map[string]*account{}
	t := time.Unix(start, 0).UTC()
	var ids []string
	site := map[string]string{}
	for mi := range r.g.ids {
		if r.known[mi] && r.meta[mi].Role == schemas.RoleSite && r.meta[mi].SiteID != "" {
			ids = append(ids, r.g.ids[mi])
			site[r.g.ids[mi]] = r.meta[mi].SiteID
		}
	}
	totals, err := src.MeterTotalsBefore(ctx, ids, t)
	if err != nil {
		return fmt.Errorf("cannot read the energy metered before %s: %w", t.Format(time.RFC3339), err)
	}
	ps, err := src.Purchases(ctx, time.Unix(0, 0), t.Add(r.cfg.SettlementGrace))
	if err != nil {
		return fmt.Errorf("cannot read purchases: %w", err)
	}
	get := func(op string) *account {
		acc := r.e.accounts[op]
		if acc == nil {
			acc = &account{settled: start}
			r.e.accounts[op] = acc
		}
		return acc
	}
	y, m, _ := t.In(r.cfg.Location).Date()
	ms := time.Date(y, m, 1, 0, 0, 0, 0, r.cfg.Location).Unix()
	monthTotals, err := src.MeterTotalsBefore(ctx, ids, time.Unix(ms, 0).UTC())
	if err != nil {
		return fmt.Errorf("cannot read the energy metered before %s: %w", t.Format(time.RFC3339), err)
	}
	for id, kwh := range totals {
		if op, _ := r.siteOwner(site[id], t.Add(-time.Second)); op != "" {
			acc := get(op)
			acc.metered += kwh
			acc.monthStart = ms
			acc.month += kwh - monthTotals[id]
		}
	}
	for _, p := range ps {
		get(p.OperatorID).bought += p.MWh * 1000
	}
	return nil
}

// settle judges one operator's settlement period [start, end), settled at
// the evaluation ending hour h, whose metered consumption was use.
// Consecutive short days form one finding; a month is one finding.
func (r *run) settle(op, period string, h int, start, end int64, acc *account, use float64) {
	deficit := acc.metered - acc.bought
	short := deficit > math.Max(r.cfg.ShortfallMinKWh, r.cfg.ShortfallTolerance*use)
	ep := r.episode(schemas.KindPurchaseShortfall, op, period)
	if ep == nil && !short {
		return
	}
	if ep == nil {
		base := schemas.Alert{EntityType: schemas.EntityOperator, OperatorID: op,
			Evidence: map[string]any{"settlement": period}}
		ep = r.open(schemas.KindPurchaseShortfall, op, period, h, start, base)
		ep.finish = finishShortfall
	}
	if period == "day" && !short {
		ep.fails = int(r.cfg.CloseAfter / time.Hour)
		r.step(ep, h, false)
		return
	}
	if short {
		// The finding's figures are those of its worst period end: the
		// most energy used without cover; its window runs to the latest.
		if deficit >= ep.cur.obs-ep.cur.exp {
			ep.cur.obs, ep.cur.exp, ep.cur.cap = acc.metered, acc.bought, use
			ep.cur.extra = float64(end)
		}
		ep.cur.hours = int((end - ep.start) / hourS)
		ep.cur.valid = ep.cur.hours / 24
		ep.cur.end = end
	}
	r.step(ep, h, short)
}

func finishShortfall(ep *episode, a *schemas.Alert, cfg *Config) {
	s := &ep.held
	deficit := math.Max(0, s.obs-s.exp)
	setEnergy(cfg, a, s.obs, s.exp, deficit)
	share := 0.0
	if s.cap > 0 {
		share = deficit / s.cap
	}
	a.Score = round(deficit/1000, 3)
	a.Severity = schemas.SeverityWarning
	if share >= 0.2 {
		a.Severity = schemas.SeverityCritical
	}
	worst := time.Unix(int64(s.extra), 0).UTC()
	a.WindowEnd = time.Unix(s.end, 0).UTC()
	a.Evidence["worst_period_end"] = worst
	a.Evidence["deficit_kwh"] = round(deficit, 1)
	a.Evidence["metered_since_start_kwh"] = round(s.obs, 1)
	a.Evidence["bought_since_start_kwh"] = round(s.exp, 1)
	a.Evidence["period_consumption_kwh"] = round(s.cap, 1)
	a.Evidence["deficit_share_of_period"] = round(share, 4)
	a.Evidence["days"] = s.valid
	a.Evidence["settlement_grace_hours"] = cfg.SettlementGrace.Hours()
	period := fmt.Sprintf("its consumption that day (%s)", fmtKWh(s.cap))
	if ep.variant != "day" {
		period = fmt.Sprintf("its consumption in the month to date (%s)", fmtKWh(s.cap))
		a.Evidence["month"] = ep.variant[len("month:"):]
	}
	a.Summary = fmt.Sprintf("Operator %s's prepaid marketplace account has run short: at its worst, by %s local time (purchases made up to %.0f h later counted), its sites had metered %s since the data began against %s bought, a deficit of %s (%.0f%% of %s), worth %s.",
		a.OperatorID, localTime(worst, cfg.Location), cfg.SettlementGrace.Hours(), fmtKWh(s.obs), fmtKWh(s.exp), fmtKWh(deficit), 100*share, period, fmtKZT(deficit*cfg.TariffKZTPerKWh))
}

func (r *run) oversized(ps []schemas.Purchase, from, to time.Time) {
	for _, p := range ps {
		if p.MWh <= r.cfg.MaxPurchaseMWh+1e-9 || p.TS.Before(from) || !p.TS.Before(to) {
			continue
		}
		a := schemas.Alert{AlertID: schemas.AlertID(schemas.KindOversizedPurchase, p.TxID), Kind: schemas.KindOversizedPurchase,
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
