package detect

import (
	"math"
	"runtime"
	"slices"

	"github.com/rigwatch/rigwatch/schemas"
)

// baseline is a meter's own load over the lookback before one local day:
// the median hourly kW of each hour of a weekday and of a weekend day (four
// weeks give 20 and 8 values: a public holiday, a closed week or a quiet
// week does not drag them down), the most it drew at each hour on any day,
// and the hours at which it is normally near its daily low (idle).
type baseline struct {
	med  [48]float64 // by slot: weekday hours 0-23, weekend hours 24-47
	nmed [48]uint16  // values behind each median (a lookback's days at most)
	max  [24]float64
	n    [24]uint16
	idle [24]bool
	// shaped: its daily profile has a shape (its lowest hour under 70% of
	// its highest), so idle hours mean something.
	shaped bool
}

// peak returns the highest of the meter's usual loads by hour: 0 without
// history.
func (b *baseline) peak() float64 {
	var v float64
	for s := range b.med {
		if b.nmed[s] >= 2 {
			v = math.Max(v, b.med[s])
		}
	}
	return v
}

// usual returns the meter's usual kW at grid hour k: its median for that
// hour of that kind of day, or of any day when that kind has too few.
func (b *baseline) usual(r *run, k int) float64 {
	s := r.slot(k)
	if b.nmed[s] >= 2 {
		return b.med[s]
	}
	o := (s + 24) % 48
	if b.nmed[o] >= 2 {
		return b.med[o]
	}
	return b.med[s]
}

// meterBaseline computes meter mi's baseline over the lookback before local
// day ds (a grid hour), leaving out days skip names and hours p marks NaN
// (not metered, or stuck).
func (r *run) meterBaseline(mi int32, p kw, ds int, skip func(day int) bool) baseline {
	return r.meterBaselineIn(&r.slotBuf, mi, p, ds, skip)
}

// meterBaselineIn is meterBaseline with the values by slot in bySlot: the
// run's buffers, or a worker's own (baselinesOf).
func (r *run) meterBaselineIn(bySlot *[48][]float64, mi int32, p kw, ds int, skip func(day int) bool) baseline {
	var b baseline
	// the values by slot, in buffers reused (a meter's baseline is
	// computed at most once a day, but every meter's the same hour)
	for s := range bySlot {
		bySlot[s] = bySlot[s][:0]
	}
	// p.at(h), off the meter's rows taken once
	e, cov := p.g.eRow(p.mi), p.g.covRow(p.mi)
	for h := max(ds-r.lookH, 0); h < ds; h++ {
		v := kwAt(e, cov, h)
		if math.IsNaN(v) || skip != nil && skip(r.dayOf(h)) {
			continue
		}
		s := int(r.slotOf[h])
		j := s % 24
		bySlot[s] = append(bySlot[s], v)
		b.n[j]++
		b.max[j] = math.Max(b.max[j], v)
	}
	var all [24]float64
	for s := range bySlot {
		b.nmed[s] = uint16(len(bySlot[s]))
		if b.nmed[s] > 0 {
			b.med[s] = medianSelecting(bySlot[s])
		}
	}
	// Idle hours from the profile of the kind of day seen most.
	lo, hi := math.Inf(1), math.Inf(-1)
	for j := range 24 {
		v := b.med[j]
		if b.nmed[j] < b.nmed[24+j] {
			v = b.med[24+j]
		}
		all[j] = v
		if b.nmed[j]+b.nmed[24+j] > 0 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	for j := range 24 {
		b.idle[j] = b.n[j] > 0 && all[j] <= lo+0.35*(hi-lo)
	}
	b.shaped = hi > 0 && lo < 0.7*hi
	return b
}

// peerProfile is what meters of one class typically draw at each local
// hour: the median and the PeerQuantile, over a fixed sample of the class's
// customer meters, of each meter's own median kW at that hour.
type peerProfile struct {
	med, hi [24]float64
	n       int
	day     int64 // Unix s of the local day it is for
}

// classPeers returns the peer profile of a meter class over the lookback
// before local day ds.
func (r *run) classPeers(class string, ds int) peerProfile {
	day := r.g.t0 + int64(ds)*hourS
	key := peerKey{class, day}
	if v, ok := r.e.st.peers[key]; ok {
		return v
	}
	var ms []int32
	for mi := range r.g.ids {
		if r.known[mi] && r.meta[mi].Role == schemas.RoleCustomer && r.meta[mi].Class == class {
			ms = append(ms, int32(mi))
		}
	}
	slices.SortFunc(ms, func(a, b int32) int { return cmpStr(r.g.ids[a], r.g.ids[b]) })
	stride := max(1, len(ms)/200)
	var sample []int32
	for i := 0; i < len(ms); i += stride {
		sample = append(sample, ms[i])
	}
	r.baselinesOf(sample, ds)
	meds := make([][]float64, 24)
	v := peerProfile{day: day}
	for _, mi := range sample {
		b := r.baselineOf(mi, ds)
		for j := range 24 {
			if b.n[j] > 0 {
				var vals []float64
				for _, s := range []int{j, 24 + j} {
					if b.nmed[s] > 0 {
						vals = append(vals, b.med[s])
					}
				}
				meds[j] = append(meds[j], slices.Max(vals))
			}
		}
		v.n++
	}
	for j := range 24 {
		// Peers say what is usual only once most of them have a history.
		if 2*len(meds[j]) > v.n {
			slices.Sort(meds[j])
			v.med[j] = quantileSorted(meds[j], 0.5)
			v.hi[j] = quantileSorted(meds[j], r.cfg.PeerQuantile)
		}
	}
	r.e.st.peers[key] = v
	return v
}

// kw is meter mi's mean kW by grid hour: NaN before the grid, and where
// less than half the hour is metered or the meter is stuck (the same
// non-zero reading a third hour running: not a real load). From the third hour of a run on: marking
// the run's first hours would need the hours after them, and an evaluation
// sees only the past.
type kw struct {
	g  *grid
	mi int32
}

func (p kw) at(h int) float64 {
	if h < 0 {
		return math.NaN() // before the grid: not metered here
	}
	return kwAt(p.g.eRow(p.mi), p.g.covRow(p.mi), h)
}

// kwAt is kw.at on a meter's rows of energy e and coverage cov (eRow and
// covRow, taken once for many hours).
func kwAt(e []float32, cov []uint16, h int) float64 {
	v, ok := rowPower(e, cov, h)
	if !ok || rowRunStart(e, cov, h, 3) <= h-2 {
		return math.NaN()
	}
	return v
}

// window returns hours [a, b] of p, in buf.
func (p kw) window(buf []float64, a, b int) []float64 {
	buf = buf[:0]
	for h := a; h <= b; h++ {
		buf = append(buf, p.at(h))
	}
	return buf
}

// runStart returns the first hour of the run of fully metered hours ending
// at h in which meter mi repeated one non-zero hourly energy exactly, h+1
// if hour h is not in one; it looks back at most limit hours (0: no
// limit). A load that moves at all differs from hour to hour at a meter's
// resolution; one repeated for hours is a stuck register or a
// communication fault, unless the meter's resolution cannot show the load
// move (see quality).
func (g *grid) runStart(mi int32, h, limit int) int {
	return rowRunStart(g.eRow(mi), g.covRow(mi), h, limit)
}

// rowRunStart is runStart on a meter's rows of energy e and coverage cov.
func rowRunStart(e []float32, cov []uint16, h, limit int) int {
	if e[h] <= 0 || cov[h] < hourS-1 {
		return h + 1
	}
	s := h
	for s > 0 && (limit == 0 || h-s+1 < limit) && e[s-1] == e[h] && cov[s-1] >= hourS-1 {
		s--
	}
	return s
}

// stuckRuns returns the runs [from, to) of at least minLen hours of meter
// mi that repeat one reading (runStart).
func (r *run) stuckRuns(mi int32, minLen int) [][2]int {
	g := r.g
	var out [][2]int
	for h := g.n - 1; h >= 0; {
		s := g.runStart(mi, h, 0)
		if s > h {
			h--
			continue
		}
		if h-s+1 >= minLen {
			out = append(out, [2]int{s, h + 1})
		}
		h = s - 1
	}
	slices.Reverse(out)
	return out
}

// baselinesOf computes the baselines of meters ms before local day ds that
// are not cached yet, on every core, and caches them.
func (r *run) baselinesOf(ms []int32, ds int) {
	day := r.g.t0 + int64(ds)*hourS
	var todo []int32
	for _, mi := range ms {
		if _, ok := r.e.st.bases[mi][day]; !ok {
			todo = append(todo, mi)
		}
	}
	out := make([]baseline, len(todo))
	// a worker per core, each with its own buffers, on every workers-th meter
	workers := min(runtime.GOMAXPROCS(0), len(todo)/16+1)
	onCores(workers, func(w int) {
		var buf [48][]float64
		for i := w; i < len(todo); i += workers {
			out[i] = r.meterBaselineIn(&buf, todo[i], kw{r.g, todo[i]}, ds, nil)
		}
	})
	for i, mi := range todo {
		r.keepBaseline(mi, day, out[i])
	}
}

// keepBaseline caches meter mi's baseline b for the local day starting at
// day (Unix s).
func (r *run) keepBaseline(mi int32, day int64, b baseline) {
	days := r.e.st.bases[mi]
	if days == nil {
		days = map[int64]baseline{}
		r.e.st.bases[mi] = days
	}
	days[day] = b
}

// peerKey names a class's peer profile: the class and the local day.
type peerKey struct {
	class string
	day   int64
}

// baselineOf returns meter mi's baseline for local day ds (meterBaseline
// with nothing skipped), computed once a day.
func (r *run) baselineOf(mi int32, ds int) baseline {
	day := r.g.t0 + int64(ds)*hourS
	if b, ok := r.e.st.bases[mi][day]; ok {
		return b
	}
	b := r.meterBaseline(mi, kw{r.g, mi}, ds, nil)
	r.keepBaseline(mi, day, b)
	return b
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
