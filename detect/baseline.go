package detect

import (
	"fmt"
	"math"
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
	nmed [48]int
	max  [24]float64
	n    [24]int
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
func (r *run) meterBaseline(mi int32, p []float64, ds int, skip func(day int) bool) baseline {
	var b baseline
	var bySlot [48][]float64
	for h := max(ds-r.lookH, 0); h < ds; h++ {
		if math.IsNaN(p[h]) || skip != nil && skip(r.dayOf(h)) {
			continue
		}
		j := r.hod(h)
		bySlot[r.slot(h)] = append(bySlot[r.slot(h)], p[h])
		b.n[j]++
		b.max[j] = math.Max(b.max[j], p[h])
	}
	var all [24]float64
	for s := range bySlot {
		b.nmed[s] = len(bySlot[s])
		if b.nmed[s] > 0 {
			b.med[s] = medianOf(bySlot[s])
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
}

// classPeers returns the peer profile of a meter class over the lookback
// before local day ds.
func (r *run) classPeers(class string, ds int) peerProfile {
	key := fmt.Sprint(class, ds)
	if v, ok := r.peerCache[key]; ok {
		return v
	}
	if r.peerCache == nil {
		r.peerCache = map[string]peerProfile{}
	}
	var ms []int32
	for mi := range r.g.ids {
		if r.known[mi] && r.meta[mi].Role == schemas.RoleCustomer && r.meta[mi].Class == class {
			ms = append(ms, int32(mi))
		}
	}
	slices.SortFunc(ms, func(a, b int32) int { return cmpStr(r.g.ids[a], r.g.ids[b]) })
	stride := max(1, len(ms)/200)
	meds := make([][]float64, 24)
	p := make([]float64, r.g.n)
	var v peerProfile
	for i := 0; i < len(ms); i += stride {
		r.hourlyKW(ms[i], p)
		b := r.meterBaseline(ms[i], p, ds, nil)
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
	r.peerCache[key] = v
	return v
}

// hourlyKW fills p with meter mi's mean kW for every grid hour: NaN where
// less than half the hour is metered or the meter is stuck (the same
// non-zero reading a third hour running: not a real load).
func (r *run) hourlyKW(mi int32, p []float64) {
	g := r.g
	for h := range g.n {
		if v, ok := g.power(mi, h); ok {
			p[h] = v
		} else {
			p[h] = math.NaN()
		}
	}
	// From the third hour of a run on: marking the run's first hours would
	// need the hours after them, and an evaluation sees only the past.
	for _, run := range r.stuckRuns(mi, 3) {
		for h := run[0] + 2; h < run[1]; h++ {
			p[h] = math.NaN()
		}
	}
}

// stuckRuns returns the runs [from, to) of at least minLen fully metered
// hours in which meter mi repeated one non-zero hourly energy exactly. A
// load that moves at all differs from hour to hour at a meter's
// resolution; one repeated for hours is a stuck register or a
// communication fault, unless the meter's resolution cannot show the load
// move (see quality).
func (r *run) stuckRuns(mi int32, minLen int) [][2]int {
	g := r.g
	var out [][2]int
	start := 0
	for h := 1; h <= g.n; h++ {
		same := h < g.n && g.full(mi, h) && g.full(mi, h-1) && g.e[mi][h] > 0 && g.e[mi][h] == g.e[mi][h-1]
		if same {
			continue
		}
		if h-start >= minLen && g.e[mi][start] > 0 && g.full(mi, start) {
			out = append(out, [2]int{start, h})
		}
		start = h
	}
	return out
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
