package sim

import (
	"math"

	"github.com/rigwatch/rigwatch/schemas"
)

// Noise rates. Gaps are drawn per meter and 4-hour block: the meter goes
// silent from a random point of the block to its end.
const (
	gapBlockP   = 0.002  // chance a block holds an outage, before the meter's gapMul
	gapOneP     = 0.0006 // a single missing reading
	duplicateP  = 0.0015 // the same row delivered twice
	correctionP = 0.0007 // a wrong value, then the right one
	gapBlockS   = 4 * 3600
)

// ReadingsAt appends to dst[:0] every reading whose interval ends at
// Start+(step+1)*Interval and returns it. The result depends on the seed and
// step alone. Each meter appears once in feeder order, except that gaps leave
// meters out; duplicates and the second, correct record of corrections come
// after all first records. Meters on 1800 s feeders appear only on steps that
// end their interval. ReadingsAt is safe for concurrent use.
func (s *Scenario) ReadingsAt(step int, dst []schemas.Reading) []schemas.Reading {
	dst = dst[:0]
	if step < 0 || step >= s.steps {
		return dst
	}
	ts := s.stepTime(step + 1)
	k := s.tickAt(step)
	var prev tick
	longEnd := s.ivS == 900 && step%2 == 1
	if longEnd {
		prev = s.tickAt(step - 1)
	}
	type fix struct {
		idx int32
		kwh float64 // the right value of a correction; < 0 for a duplicate
	}
	var fixBuf [512]fix
	fixes := fixBuf[:0]
	emit := func(mi int, v float64, iv int32) {
		if s.missing(mi, &k) {
			return
		}
		v = round3(v)
		r := schemas.Reading{MeterID: s.meters[mi].id, TS: ts, KWh: v, IntervalS: iv}
		switch u := s.unit(tagDup, uint64(mi), uint64(step)); {
		case u < duplicateP:
			fixes = append(fixes, fix{int32(len(dst)), -1})
		case u < duplicateP+correctionP:
			fixes = append(fixes, fix{int32(len(dst)), v})
			w := s.unit(tagCorrVal, uint64(mi), uint64(step))
			switch {
			case w < 0.3:
				r.KWh = 0
			case w < 0.6:
				r.KWh = round3(v * (1.5 + 8*w))
			default:
				r.KWh = round3(v * w)
			}
			if r.KWh == v {
				r.KWh = v + 0.001
			}
		}
		dst = append(dst, r)
	}
	for fi := range s.feeders {
		f := &s.feeders[fi]
		iv := int32(s.ivS)
		if f.long {
			if !longEnd {
				continue
			}
			iv *= 2
		}
		var sum, sumPrev float64
		for mi := f.head + 1; mi < f.end; mi++ {
			v := s.meterKWh(mi, &k)
			sum += v
			r := s.reportedKWh(mi, &k, v)
			if f.long {
				p := s.meterKWh(mi, &prev)
				sumPrev += p
				r += s.reportedKWh(mi, &prev, p)
			}
			emit(mi, r, iv)
		}
		if f.noHead {
			continue
		}
		if len(f.moves) > 0 {
			sum += s.servedDelta(fi, &k)
		}
		head, _, _ := s.feederTick(fi, &k, sum)
		if f.long {
			if len(f.moves) > 0 {
				sumPrev += s.servedDelta(fi, &prev)
			}
			h, _, _ := s.feederTick(fi, &prev, sumPrev)
			head += h
		}
		emit(f.head, head, iv)
	}
	for _, x := range fixes {
		r := dst[x.idx]
		if x.kwh >= 0 {
			r.KWh = x.kwh
		}
		dst = append(dst, r)
	}
	return dst
}

// missing reports whether the meter's reading for interval k is lost.
func (s *Scenario) missing(mi int, k *tick) bool {
	m := &s.meters[mi]
	if s.unit(tagGapOne, uint64(mi), uint64(k.t)) < gapOneP*m.gapMul {
		return true
	}
	end := k.unixEnd - 1
	block := end / gapBlockS
	if s.unit(tagGapBlock, uint64(mi), uint64(block)) >= gapBlockP*m.gapMul {
		return false
	}
	from := int64(s.hash(tagGapStart, uint64(mi), uint64(block)) % gapBlockS)
	return end%gapBlockS >= from
}

// FeederBalance returns, for the reading of feeder fi that ends at step, the
// feeder-head energy and its parts: the true energy of the customers its
// head serves (its own meters, plus or minus a block switched to or from a
// neighbour), the technical losses they cause, and the energy taken before
// the meters (with the extra losses it causes). head = metered + loss +
// stolen. It returns ok = false for a feeder with no head reading at that
// step.
func (s *Scenario) FeederBalance(fi, step int) (head, metered, loss, stolen float64, ok bool) {
	if fi < 0 || fi >= len(s.feeders) || step < 0 || step >= s.steps {
		return 0, 0, 0, 0, false
	}
	f := &s.feeders[fi]
	if f.noHead {
		return 0, 0, 0, 0, false
	}
	ticks := []int{step}
	if f.long {
		if step%2 == 0 {
			return 0, 0, 0, 0, false
		}
		ticks = []int{step - 1, step}
	}
	for _, t := range ticks {
		k := s.tickAt(t)
		var sum float64
		for mi := f.head + 1; mi < f.end; mi++ {
			sum += s.meterKWh(mi, &k)
		}
		sum += s.servedDelta(fi, &k)
		h, l, st := s.feederTick(fi, &k, sum)
		head, metered, loss, stolen = head+h, metered+sum, loss+l, stolen+st
	}
	return head, metered, loss, stolen, true
}

// Feeders returns the number of feeders.
func (s *Scenario) Feeders() int { return len(s.feeders) }

// FeederID returns the id of feeder fi.
func (s *Scenario) FeederID(fi int) string { return s.feeders[fi].id }

// ReadingsPerStepEstimate returns about how many readings a step holds, to
// size the dst slice of ReadingsAt.
func (s *Scenario) ReadingsPerStepEstimate() int {
	return int(math.Ceil(float64(len(s.meters)) * 1.01))
}
