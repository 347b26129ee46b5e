package sim

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// energy runs the loads that incidents and purchases depend on over the whole
// period: site consumption per operator and hour, and the true excess energy
// of every incident.
func (b *builder) energy() {
	s := b.s
	hours := (s.steps*s.ivS + 3599) / 3600
	opHour := make([][]float64, len(b.ops))
	for op := range opHour {
		opHour[op] = make([]float64, hours)
	}
	siteHidden := make([]float64, len(s.sites))
	siteAfter := make([]float64, len(s.sites))
	extraSum := make([]float64, len(s.extras))
	divSum := make([]float64, len(s.divs))
	divMetered := make([]float64, len(s.divs))
	atkSum := map[int]float64{}
	movSum := make([]float64, len(s.moves))
	for t := 0; t < s.steps; t++ {
		k := s.tickAt(t)
		h := t * s.ivS / 3600
		for si := range s.sites {
			total, hidden := s.siteKW(si, &k)
			opHour[s.sites[si].operator][h] += total * k.hours
			siteHidden[si] += hidden * k.hours
			if ti := b.siteTruth[si]; ti >= 0 && s.truth[ti].Pattern == "site_rigs_inactive" && !s.stepTime(t).Before(s.truth[ti].Start) {
				siteAfter[si] += total * k.hours
			}
		}
		for ei := range s.extras {
			extraSum[ei] += s.extraKWh(&s.meters[s.extras[ei].meter], &k)
		}
		for di := range s.divs {
			dv := &s.divs[di]
			if t < dv.onset {
				continue
			}
			f := &s.feeders[dv.feeder]
			var sum float64
			for mi := f.head + 1; mi < f.end; mi++ {
				sum += s.meterKWh(mi, &k)
			}
			_, _, stolen := s.feederTick(dv.feeder, &k, sum)
			divSum[di] += stolen
			divMetered[di] += sum
		}
		for ai := range s.attacks {
			a := &s.attacks[ai]
			if k.day < 0 || k.day >= len(a.days) || !a.days[k.day] {
				continue
			}
			v := s.meterKWh(a.meter, &k)
			atkSum[a.truth] += v - s.reportedKWh(a.meter, &k, v)
		}
		for ti := range s.moves {
			movSum[ti] += s.movedKWh(&s.moves[ti], &k)
		}
	}
	for si, ti := range b.siteTruth {
		if ti < 0 {
			continue
		}
		if s.truth[ti].Pattern == "site_rigs_inactive" {
			s.truth[ti].ExcessKWh = f64(round3(siteAfter[si]))
		} else {
			s.truth[ti].ExcessKWh = f64(round3(siteHidden[si]))
		}
	}
	for ei, ti := range b.extTruth {
		s.truth[ti].ExcessKWh = f64(round3(extraSum[ei]))
	}
	for di, ti := range b.divTruth {
		s.truth[ti].ExcessKWh = f64(round3(divSum[di]))
		s.truth[ti].Detail = fmt.Sprintf("%.1f%% of the feeder's metered energy taken before the meters after onset (target %.0f%%)",
			100*divSum[di]/math.Max(divMetered[di], 1e-9), 100*s.divs[di].frac)
	}
	for ti, v := range atkSum {
		s.truth[ti].ExcessKWh = f64(round3(v))
	}
	for mi, ti := range b.movTruth {
		s.truth[ti].ExcessKWh = f64(round3(movSum[mi]))
	}
	b.purchases(opHour)
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// Purchase habits of lawful operators. Purchases are prepaid energy, bought
// on the marketplace in lots of at most 1 MWh, and operators buy the way
// businesses keep a prepaid account topped up:
const (
	habitCushion = iota // keeps 6-30 hours of use in hand, topping up in lots as it runs down
	habitNightly        // buys in lots as the balance runs out by day, and the evening's use just after midnight
	habitMorning        // buys each morning enough for the day ahead, in whole MWh
	nHabits
)

// SettlementGrace is how long after a settlement period ends a purchase still
// counts for it: an operator may buy just after midnight for the evening
// before. The detector's default is the same.
const SettlementGrace = 2 * time.Hour

// purchases makes each operator's marketplace transactions from its hourly
// consumption (kWh): lawful operators keep their prepaid balance (everything
// bought less everything metered) from running short, each by its habit;
// an operator with a planted shortfall covers 60-95% of its use from its
// shortfall day on; some days one lot is oversized.
func (b *builder) purchases(opHour [][]float64) {
	s := b.s
	type ptx struct {
		p     schemas.Purchase
		truth int
	}
	var txs []ptx
	startHour := s.start.Truncate(time.Hour)
	for op := range b.ops {
		o := &b.ops[op]
		use := opHour[op]
		var total float64
		for _, v := range use {
			total += v
		}
		if total <= 0 {
			continue
		}
		meanH := total / float64(len(use))
		habit := b.rng.IntN(nHabits)
		cushion := b.uniform(6, 30) * meanH
		ti, short := b.shortfall[op]
		if short {
			habit = habitMorning // no cushion to run down first
		}
		sfHour := len(use)
		if short {
			sfHour = b.sfDay[op] * 24
		}
		lotSize := func() float64 {
			if b.rng.Float64() < 0.25 {
				return 500
			}
			return 1000
		}
		var balance float64 // kWh bought less kWh used so far
		var mine []schemas.Purchase
		buy := func(h int, at time.Duration, kwh float64) {
			for kwh > 1e-6 {
				lot := lotSize()
				if habit == habitMorning {
					lot = 1000
				}
				ts := startHour.Add(time.Duration(h)*time.Hour + at + time.Duration(b.rng.IntN(600))*time.Second)
				p := schemas.Purchase{OperatorID: o.id, MWh: lot / 1000, TS: ts.UTC()}
				if b.rng.Float64() < 0.7 {
					p.SiteID = s.sites[o.sites[b.rng.IntN(len(o.sites))]].id
				}
				txs = append(txs, ptx{p: p, truth: -1})
				mine = append(mine, p)
				balance += lot
				kwh -= lot
			}
		}
		var sfRate float64
		boughtDay := -1
		for h, u := range use {
			local := startHour.Add(time.Duration(h) * time.Hour).In(schemas.Local)
			hod := local.Hour()
			switch {
			case h >= sfHour:
				// Short: each morning, buy a share of what yesterday used.
				if hod == 8 {
					rg := b.sfRange[op]
					sfRate = b.uniform(rg[0], rg[1])
					var y float64
					for k := max(0, h-24); k < h; k++ {
						y += use[k]
					}
					if h < 24 {
						y = u * 24
					}
					buy(h, 0, math.Floor(sfRate*y/500)*500)
				}
			case habit == habitCushion:
				if balance-u < cushion {
					buy(h, 0, cushion+u-balance)
				}
			case habit == habitNightly:
				if hod == 0 && balance < 0 {
					buy(h, 5*time.Minute+time.Duration(b.rng.IntN(70))*time.Minute, -balance+2*meanH)
				}
				if hod < 18 && balance-u < 0 {
					buy(h, 0, u-balance+meanH)
				}
			case habit == habitMorning:
				if day := local.YearDay(); (hod == 7 || h == 0) && day != boughtDay {
					boughtDay = day
					// The day ahead as the larger of the last two days
					// (its own plan while it has no history).
					var y1, y2 float64
					for k := max(0, h-24); k < h; k++ {
						y1 += use[k]
					}
					for k := max(0, h-48); k < max(0, h-24); k++ {
						y2 += use[k]
					}
					y := math.Max(y1, y2)
					if h < 24 {
						y = 0
						for k := h; k < min(len(use), h+24); k++ {
							y += use[k]
						}
					}
					need := 1.15*y - balance
					if need > 0 {
						buy(h, time.Duration(b.rng.IntN(60))*time.Minute, math.Ceil(need/1000)*1000)
					}
				}
			}
			balance -= u
		}
		if short {
			b.shortTruth(&s.truth[ti], use, mine)
		}
	}
	// Oversized lots: one transaction of 1.2-5 MWh on some operator-days,
	// bought on top of the habit (it is the size that breaks the rule).
	for _, key := range b.oversizedKeys() {
		op, d := key[0], key[1]
		o := &b.ops[op]
		if d >= s.days || len(o.sites) == 0 {
			continue
		}
		lot := round3(b.uniform(1.2, 5))
		p := schemas.Purchase{OperatorID: o.id, MWh: lot, TS: s.dayStart(d).Add(time.Duration(2*3600+b.rng.IntN(18*3600)) * time.Second)}
		if b.rng.Float64() < 0.7 {
			p.SiteID = s.sites[o.sites[b.rng.IntN(len(o.sites))]].id
		}
		tr := len(s.truth)
		s.truth = append(s.truth, Truth{Kind: schemas.KindOversizedPurchase, EntityType: schemas.EntityPurchase,
			OperatorID: o.id, SiteID: p.SiteID, LicenseID: o.lic, Start: p.TS, End: p.TS, Pattern: "oversized_lot",
			Detail: fmt.Sprintf("one transaction of %.3f MWh, above the 1 MWh limit", lot)})
		txs = append(txs, ptx{p: p, truth: tr})
	}
	slices.SortStableFunc(txs, func(a, b ptx) int { return a.p.TS.Compare(b.p.TS) })
	for i := range txs {
		x := &txs[i]
		x.p.PriceKZTPerMWh = f64(math.Round(b.uniform(22000, 36000)/10) * 10)
		x.p.TxID = fmt.Sprintf("TX-%s-%06d", x.p.TS.In(schemas.Local).Format("20060102"), i+1)
		if x.truth >= 0 {
			s.truth[x.truth].EntityID, s.truth[x.truth].TxID = x.p.TxID, x.p.TxID
		}
		s.purchases = append(s.purchases, x.p)
	}
	// A shortfall operator whose account never ran short has nothing to report.
	out := s.truth[:0]
	for _, t := range s.truth {
		if t.Kind == schemas.KindPurchaseShortfall && (t.ExcessKWh == nil || *t.ExcessKWh <= 0) {
			continue
		}
		out = append(out, t)
	}
	s.truth = out
}

// oversizedKeys returns the planted oversized (operator, day) pairs in a
// stable order.
func (b *builder) oversizedKeys() [][2]int {
	keys := make([][2]int, 0, len(b.oversized))
	for k := range b.oversized {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]int) int {
		if a[0] != b[0] {
			return a[0] - b[0]
		}
		return a[1] - b[1]
	})
	return keys
}

// shortTruth settles a short operator's account as the contract does (at
// each local day's end, with purchases up to SettlementGrace after it
// counting) over the days that can be settled within the data, and records
// the largest deficit.
func (b *builder) shortTruth(tr *Truth, use []float64, ps []schemas.Purchase) {
	s := b.s
	startHour := s.start.Truncate(time.Hour)
	var worst float64
	for d := 0; d < s.days; d++ {
		end := s.dayStart(d + 1)
		if end.Add(SettlementGrace).After(s.End()) {
			break
		}
		var used, bought float64
		for h := 0; h < len(use) && !startHour.Add(time.Duration(h+1)*time.Hour).After(end); h++ {
			used += use[h]
		}
		for _, p := range ps {
			if p.TS.Before(end.Add(SettlementGrace)) {
				bought += p.MWh * 1000
			}
		}
		worst = math.Max(worst, used-bought)
	}
	tr.ExcessKWh = f64(round3(worst))
}
