package sim

import (
	"fmt"
	"math"
	"slices"

	"github.com/rigwatch/rigwatch/schemas"
)

// False data injection: a meter that reports less than its customer uses.
// The attacks are the standard ones of the theft literature, after Jokar,
// Arianpoo and Leung (2016), "Electricity theft detection in AMI using
// customers' consumption patterns":
const (
	attackScaleDaily = "scale_daily" // every reading times a factor drawn each day, 0.2-0.8
	attackClip       = "clip"        // readings clipped at a cap drawn each day
	attackSubtract   = "subtract"    // a constant drawn each day subtracted, floored at zero
	attackZeros      = "zeros"       // zero for a window of 4-24 hours of the day
	attackScaleEach  = "scale_each"  // every reading times its own factor, 0.2-0.8
	attackMeanScaled = "mean_scaled" // the day's mean times a factor drawn each day
	attackMix        = "mix"         // one of the above, drawn for each meter and day
)

var attackKinds = []string{attackScaleDaily, attackClip, attackSubtract, attackZeros, attackScaleEach, attackMeanScaled}

// attack is false data injection by one meter.
type attack struct {
	meter int
	kind  string
	days  []bool    // attacked scenario days
	mean  []float64 // per scenario day: the meter's true mean kWh per interval
	max   []float64 // and its largest
	truth int       // index of the feeder's incident in the truth
}

// attackFeeder makes nAttack customer meters of feeder fi under-report on
// the days of the scenario marked in days, and records the incident: among
// its households, and its shops and small businesses too if business says
// so.
func (b *builder) attackFeeder(fi int, kind string, nAttack int, days []bool, business bool) {
	s := b.s
	f := &s.feeders[fi]
	var cands []int
	for mi := f.head + 1; mi < f.end; mi++ {
		m := &s.meters[mi]
		ok := m.kind == kindResidential || business && (m.kind == kindCommercial || m.kind == kindSteady)
		if ok && m.extra < 0 && m.attack < 0 {
			cands = append(cands, mi)
		}
	}
	if len(cands) < nAttack {
		return
	}
	first, last := -1, -1
	for d, on := range days {
		if on {
			if first < 0 {
				first = d
			}
			last = d
		}
	}
	if first < 0 {
		return
	}
	tr := Truth{Kind: schemas.KindFeederImbalance, EntityType: schemas.EntityFeeder, EntityID: f.id,
		MeterID: fmt.Sprintf("#%d", f.head), FeederID: f.id, Oblast: f.oblast,
		Start: s.dayStart(first), End: s.dayStart(last + 1), Pattern: "fdi_" + kind}
	// Thieves are more often heavy users: draw them weighted by their use.
	weights := make([]float64, len(cands))
	for i, mi := range cands {
		weights[i] = b.meanKW(&s.meters[mi])
	}
	picked := make([]int, 0, nAttack)
	for len(picked) < nAttack {
		j := b.pickWeighted(weights)
		weights[j] = 0
		picked = append(picked, cands[j])
	}
	for _, mi := range picked {
		a := attack{meter: mi, kind: kind, days: days, mean: make([]float64, s.days), max: make([]float64, s.days), truth: len(s.truth)}
		n := make([]int, s.days)
		for t := 0; t < s.steps; t++ {
			k := s.tickAt(t)
			v := s.meterKWh(mi, &k)
			a.mean[k.day] += v
			a.max[k.day] = math.Max(a.max[k.day], v)
			n[k.day]++
		}
		for d := range a.mean {
			a.mean[d] /= float64(max(1, n[d]))
		}
		s.meters[mi].attack = int32(len(s.attacks))
		s.attacks = append(s.attacks, a)
		tr.Suspects = append(tr.Suspects, fmt.Sprintf("#%d", mi))
	}
	nd := 0
	for _, on := range days {
		if on {
			nd++
		}
	}
	tr.Detail = fmt.Sprintf("%d meters under-report (%s) on %d days", nAttack, kind, nd)
	s.truth = append(s.truth, tr)
}

// attackDays marks n of the scenario's days, the first day always among them.
func (b *builder) attackDays(from, n int) []bool {
	s := b.s
	days := make([]bool, s.days)
	rest := b.rng.Perm(s.days - from - 1)
	days[from] = true
	for _, d := range rest[:min(len(rest), n-1)] {
		days[from+1+d] = true
	}
	return days
}

// reportedKWh returns what meter mi reports for interval k whose true
// energy is v.
func (s *Scenario) reportedKWh(mi int, k *tick, v float64) float64 {
	m := &s.meters[mi]
	switch {
	case m.attack >= 0:
		a := &s.attacks[m.attack]
		if k.day < 0 || k.day >= len(a.days) || !a.days[k.day] {
			return v
		}
		return s.attacked(a, k, v)
	case m.office >= 0:
		return s.officeReported(mi, m, k, v)
	}
	return v
}

func (s *Scenario) attacked(a *attack, k *tick, v float64) float64 {
	mi, d := uint64(a.meter), uint64(k.dayAbs)
	u := s.unit(tagAttackDay, mi, d)
	kind := a.kind
	if kind == attackMix {
		kind = attackKinds[s.hash(tagAttackDay, mi+1<<40, d)%uint64(len(attackKinds))]
	}
	switch kind {
	case attackScaleDaily:
		return v * (0.2 + 0.6*u)
	case attackClip:
		return math.Min(v, (0.2+0.4*u)*a.max[k.day])
	case attackSubtract:
		return math.Max(0, v-(0.3+0.6*u)*a.mean[k.day])
	case attackZeros:
		from := math.Floor(u * 20)
		n := 4 + math.Floor(s.unit(tagAttackDay, mi+2<<40, d)*21)
		if h := k.hour; h >= from && h < from+n {
			return 0
		}
		return v
	case attackScaleEach:
		return v * (0.2 + 0.6*s.unit(tagAttack, mi, uint64(k.t)))
	case attackMeanScaled:
		return a.mean[k.day] * (0.2 + 0.6*u)
	}
	return v
}

// theftGrid builds PresetTheft: residential feeders of real households with
// a few small businesses, like the observer-meter benchmarks of the theft
// literature.
func (b *builder) theftGrid() {
	s, cfg := b.s, b.s.cfg
	for fi := range cfg.Feeders {
		f := feederSim{id: fmt.Sprintf("FDR-%05d", fi+1), oblast: oblasts[b.pickWeighted(oblastPop)], class: schemas.ClassResidential,
			typ: feederResidential, div: -1}
		f.head = len(s.meters)
		s.meters = append(s.meters, meterSim{kind: kindHead, feeder: int32(fi), site: -1, extra: -1, attack: -1, office: -1, gapMul: 0.3})
		for range cfg.MetersPerFeeder - 1 {
			k := kindResidential
			switch u := b.rng.Float64(); {
			case u < 0.1:
				k = kindCommercial
			case u < 0.14:
				k = kindSteady
			}
			m := b.newMeter(fi, k)
			if k == kindResidential {
				m.scale = b.uniform(0.8, 1.25) // the households as they are
			}
			if k == kindCommercial {
				m.scale = b.uniform(2, 15) // a small business: a shop, a hairdresser, a café
			}
			s.meters = append(s.meters, m)
		}
		f.end = len(s.meters)
		s.feeders = append(s.feeders, f)
	}
}

// theftIncidents attacks the first feeders of PresetTheft, one attack each
// in turn, and leaves the others honest; every other feeder has no
// technical losses at all.
func (b *builder) theftIncidents() {
	s := b.s
	kinds := append(slices.Clone(attackKinds), attackMix)
	n := min(len(kinds), len(s.feeders)/2)
	for fi := range n {
		b.attackFeeder(fi, kinds[fi], 5, b.attackDays(0, (s.days+1)/2), false)
	}
}
