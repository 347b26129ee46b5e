package sim

import (
	"fmt"
	"math"

	"github.com/rigwatch/rigwatch/schemas"
)

// transfer is switching: for a day or three a block of a feeder's customers
// is served from a neighbouring feeder (maintenance, an outage), and no
// meter record says so. The donor's head meter measures less than its
// registered meters, the receiver's more, by the same energy.
type transfer struct {
	from, to int   // donor and receiving feeder
	meters   []int // the donor's meters served by the receiver
	on, off  int   // base intervals [on, off)
}

// movedKWh returns the true energy the transfer's meters use in interval k,
// 0 when it is not under way.
func (s *Scenario) movedKWh(tr *transfer, k *tick) float64 {
	if k.t < tr.on || k.t >= tr.off {
		return 0
	}
	var v float64
	for _, mi := range tr.meters {
		v += s.meterKWh(mi, k)
	}
	return v
}

// servedDelta returns the energy feeder fi's head serves in interval k
// beyond its own registered meters: what it takes over from a neighbour,
// less what a neighbour takes over from it.
func (s *Scenario) servedDelta(fi int, k *tick) float64 {
	var d float64
	for _, ti := range s.feeders[fi].moves {
		tr := &s.moves[ti]
		switch fi {
		case tr.to:
			d += s.movedKWh(tr, k)
		case tr.from:
			d -= s.movedKWh(tr, k)
		}
	}
	return d
}

// transfers plants switching between pairs of feeders that carry no other
// feeder incident, the pair in one oblast where possible.
func (b *builder) transfers() {
	s := b.s
	busy := make([]bool, len(s.feeders))
	for fi, f := range s.feeders {
		busy[fi] = f.typ == feederMining || f.div >= 0 || f.noHead
		for mi := f.head + 1; mi < f.end && !busy[fi]; mi++ {
			busy[fi] = s.meters[mi].attack >= 0
		}
	}
	n := max(1, int(math.Round(float64(len(s.feeders))/20)))
	for range n {
		var free []int
		for fi := range s.feeders {
			if !busy[fi] {
				free = append(free, fi)
			}
		}
		if len(free) < 2 {
			return
		}
		from := free[b.rng.IntN(len(free))]
		to := -1
		for _, j := range b.rng.Perm(len(free)) {
			if c := free[j]; c != from && (to < 0 || s.feeders[c].oblast == s.feeders[from].oblast) {
				to = c
				if s.feeders[c].oblast == s.feeders[from].oblast {
					break
				}
			}
		}
		f := &s.feeders[from]
		share := b.uniform(0.05, 0.1)
		var block []int
		var kw float64
		for _, j := range b.rng.Perm(f.end - f.head - 1) {
			mi := f.head + 1 + j
			m := &s.meters[mi]
			if m.kind == kindHospital || m.extra >= 0 || m.attack >= 0 {
				continue
			}
			if mk := b.meanKW(m); kw+mk <= share*f.meanKW*1.15 {
				block = append(block, mi)
				kw += mk
			}
			if kw >= share*f.meanKW {
				break
			}
		}
		if len(block) == 0 {
			continue
		}
		hours := 24 + b.rng.IntN(49)
		on := b.randTick(0.2, 0.75)
		off := min(s.steps, on+hours*3600/s.ivS)
		ti := len(s.moves)
		s.moves = append(s.moves, transfer{from: from, to: to, meters: block, on: on, off: off})
		s.feeders[from].moves = append(s.feeders[from].moves, ti)
		s.feeders[to].moves = append(s.feeders[to].moves, ti)
		busy[from], busy[to] = true, true
		b.movTruth[ti] = len(s.truth)
		t := s.feeders[to]
		s.truth = append(s.truth, Truth{Kind: schemas.KindTopologyChange, EntityType: schemas.EntityFeeder, EntityID: t.id,
			MeterID: fmt.Sprintf("#%d", t.head), FeederID: t.id, Oblast: t.oblast, Related: []string{f.id},
			Start: s.stepTime(on), End: s.stepTime(off), Pattern: "switching",
			Detail: fmt.Sprintf("%d customers of %s (about %.0f%% of its load) served from %s for %d hours without a meter record",
				len(block), f.id, 100*kw/f.meanKW, t.id, (off-on)*s.ivS/3600)})
	}
}
