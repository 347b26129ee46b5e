package sim

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// energy runs the loads that incidents and purchases depend on over the whole
// period: site consumption per operator and day, and the true excess energy of
// every incident.
func (b *builder) energy() {
	s := b.s
	nDays := s.days
	opDay := make([][]float64, len(b.ops))
	for op := range opDay {
		opDay[op] = make([]float64, nDays)
	}
	siteHidden := make([]float64, len(s.sites))
	siteAfter := make([]float64, len(s.sites))
	extraSum := make([]float64, len(s.extras))
	divSum := make([]float64, len(s.divs))
	divMetered := make([]float64, len(s.divs))
	for t := 0; t < s.steps; t++ {
		k := s.tickAt(t)
		for si := range s.sites {
			total, hidden := s.siteKW(si, &k)
			opDay[s.sites[si].operator][k.day] += total * k.hours
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
	b.purchases(opDay)
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// purchases makes each operator's marketplace transactions: every local day,
// 100-110% of the day's metered consumption in lots of at most 1 MWh, except
// for the planted shortfalls and oversized lots.
func (b *builder) purchases(opDay [][]float64) {
	s := b.s
	type ptx struct {
		p     schemas.Purchase
		truth int
	}
	var seq int
	for d := 0; d < s.days; d++ {
		dayStart := time.Date(s.start.In(Local).Year(), s.start.In(Local).Month(), s.start.In(Local).Day()+d, 0, 0, 0, 0, Local)
		base := b.uniform(22000, 36000)
		var day []ptx
		for op := range b.ops {
			o := &b.ops[op]
			need := opDay[op][d]
			if need <= 0 {
				continue
			}
			r := b.uniform(1.0, 1.1)
			ti, short := b.shortfall[op]
			if short && d >= b.sfDay[op] {
				rg := b.sfRange[op]
				r = b.uniform(rg[0], rg[1])
			}
			mwh := math.Ceil(need*r) / 1000
			if !short || d < b.sfDay[op] {
				mwh = math.Max(mwh, math.Ceil(need)/1000) // never below consumption
			}
			bought := 0.0
			var lots []float64
			if oti, ok := b.oversized[[2]int{op, d}]; ok && oti == -1 && mwh >= 1.3 {
				lot := round3(b.uniform(1.2, math.Min(5, mwh)))
				lots = append(lots, lot)
				bought += lot
			}
			for bought < mwh-1e-9 {
				lot := 1.0
				switch u := b.rng.Float64(); {
				case u < 0.1:
					lot = 0.5
				case u < 0.15:
					lot = 0.25
				}
				lot = round3(math.Min(lot, mwh-bought))
				if lot <= 0 {
					break
				}
				lots = append(lots, lot)
				bought += lot
			}
			if short && d >= b.sfDay[op] {
				tr := &s.truth[ti]
				if tr.Start.IsZero() {
					tr.Start = dayStart.UTC()
				}
				ex := need - bought*1000
				if tr.ExcessKWh != nil {
					ex += *tr.ExcessKWh
				}
				tr.ExcessKWh = f64(round3(ex))
			}
			for i, lot := range lots {
				price := math.Round((base+b.uniform(-1500, 3000))/10) * 10
				p := schemas.Purchase{OperatorID: o.id, MWh: lot, PriceKZTPerMWh: f64(price),
					TS: dayStart.Add(time.Duration(b.rng.IntN(86400)) * time.Second).UTC()}
				if b.rng.Float64() < 0.7 {
					p.SiteID = s.sites[o.sites[b.rng.IntN(len(o.sites))]].id
				}
				x := ptx{p: p, truth: -1}
				if i == 0 && lot > schemas.MaxPurchaseMWh {
					x.truth = len(s.truth)
					s.truth = append(s.truth, Truth{Kind: schemas.KindOversizedPurchase, EntityType: schemas.EntityPurchase,
						OperatorID: o.id, SiteID: p.SiteID, LicenseID: o.lic, Start: p.TS, End: p.TS, Pattern: "oversized_lot",
						Detail: fmt.Sprintf("one transaction of %.3f MWh, above the 1 MWh limit", lot)})
				}
				day = append(day, x)
			}
		}
		slices.SortStableFunc(day, func(a, b ptx) int { return a.p.TS.Compare(b.p.TS) })
		for _, x := range day {
			seq++
			x.p.TxID = fmt.Sprintf("TX-%s-%06d", dayStart.Format("20060102"), seq)
			if x.truth >= 0 {
				s.truth[x.truth].EntityID, s.truth[x.truth].TxID = x.p.TxID, x.p.TxID
			}
			s.purchases = append(s.purchases, x.p)
		}
	}
	// A shortfall operator with no consumption at all has nothing to report.
	out := s.truth[:0]
	for _, t := range s.truth {
		if t.Kind == schemas.KindPurchaseShortfall && (t.ExcessKWh == nil || *t.ExcessKWh <= 0) {
			continue
		}
		out = append(out, t)
	}
	s.truth = out
}
