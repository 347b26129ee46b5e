package detect

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
)

// siteSeries is a site meter's hourly draw and registered capacity.
type siteSeries struct {
	mi   int32
	site string
	p    []float64 // mean kW, NaN where less than half the hour is metered
	c    []float64 // registered kW, mean over the hour
	// the hours as stored for the pages: energy and seconds covered
	e   []float32
	cov []uint16
}

func (s *siteSeries) ratio(h int) (float64, bool) {
	if math.IsNaN(s.p[h]) || s.c[h] <= 0 {
		return 0, false
	}
	return s.p[h] / s.c[h], true
}

// sites returns the site meters of the grid with their draw and capacity,
// ordered by meter id, for over_capacity and unregistered_load. The engine
// keeps them between calls and derives only the hours that changed.
func (r *run) sites() []*siteSeries {
	if r.ss != nil {
		return r.ss
	}
	st, g := r.e.st, r.g
	out := []*siteSeries{}
	var steps []registry.Step
	for mi := range g.ids {
		m := r.meta[mi]
		if !r.known[mi] || m.Role != schemas.RoleSite || m.SiteID == "" {
			continue
		}
		s, from, capFrom := st.sites[int32(mi)], r.fedFrom, r.capFrom
		if s == nil || s.site != m.SiteID || len(s.p) != g.n {
			s = &siteSeries{mi: int32(mi), site: m.SiteID, p: make([]float64, g.n), c: make([]float64, g.n),
				e: make([]float32, g.n), cov: make([]uint16, g.n)}
			st.sites[int32(mi)] = s
			from, capFrom = 0, 0
		}
		for h := from; h < g.n; h++ {
			if p, ok := g.power(int32(mi), h); ok {
				s.p[h] = p
			} else {
				s.p[h] = math.NaN()
			}
		}
		lo := min(from, capFrom)
		old := append(r.cbuf[:0], s.c[lo:]...)
		steps = r.capacity(s, capFrom, steps)
		for h := lo; h < g.n; h++ {
			if e, cov := g.eRow(int32(mi))[h], g.covRow(int32(mi))[h]; e != s.e[h] || cov != s.cov[h] || s.c[h] != old[h-lo] {
				s.e[h], s.cov[h] = e, cov
				r.e.siteHours = append(r.e.siteHours, schemas.SiteHour{SiteID: s.site, MeterID: g.ids[mi], Hour: g.hourTime(h),
					KWh: float64(e), CoveredS: int(cov), CapacityKW: s.c[h]})
			}
		}
		r.cbuf = old
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *siteSeries) int { return strings.Compare(g.ids[a.mi], g.ids[b.mi]) })
	r.ss = out
	return out
}

// capacitySteps is a Registry that lists a site's capacity changes
// (*registry.Index does): the hourly capacity of a site is then one pass
// over them instead of a lookup per quarter hour.
type capacitySteps interface {
	AppendCapacityChanges(dst []registry.Step, siteID string, from, to time.Time) []registry.Step
}

// capacity sets site s's registered kW for hours from on: the mean of the
// capacity valid at four quarter-hour points of the hour.
func (r *run) capacity(s *siteSeries, from int, buf []registry.Step) []registry.Step {
	g := r.g
	if from >= g.n {
		return buf
	}
	at := func(h int, q int64) int64 { return g.t0 + int64(h)*hourS + q*900 + 450 }
	reg, ok := r.e.reg.(capacitySteps)
	if !ok {
		for h := from; h < g.n; h++ {
			var c float64
			for q := int64(0); q < 4; q++ {
				c += r.e.reg.SiteCapacityW(s.site, time.Unix(at(h, q), 0))
			}
			s.c[h] = c / 4 / 1000
		}
		return buf
	}
	buf = reg.AppendCapacityChanges(buf[:0], s.site, time.Unix(at(from, 0), 0), time.Unix(at(g.n-1, 3)+1, 0))
	k := 0
	for h := from; h < g.n; h++ {
		var c float64
		for q := int64(0); q < 4; q++ {
			t := at(h, q)
			for k+1 < len(buf) && buf[k+1].At.UnixNano() <= t*1e9 {
				k++
			}
			if len(buf) > 0 && buf[k].At.UnixNano() <= t*1e9 {
				c += buf[k].CapacityW
			}
		}
		s.c[h] = c / 4 / 1000
	}
	return buf
}

// capDay is a site's draw relative to its registered capacity over the
// lookback before one local day.
type capDay struct {
	med     float64 // median hourly draw / capacity
	n       int     // valid hours
	bestDay float64 // highest daily median ratio
	days    int     // days with at least 12 valid hours
}

func (r *run) capDays(s *siteSeries) map[int]capDay {
	out := map[int]capDay{}
	cache := r.e.st.caps[s.mi]
	if cache == nil {
		cache = map[int64]capDay{}
		r.e.st.caps[s.mi] = cache
	}
	var buf []float64
	for h := r.hFirst; h <= r.hLast; h++ {
		ds := r.dayOf(h)
		if _, ok := out[ds]; ok {
			continue
		}
		if d, ok := cache[r.g.t0+int64(ds)*hourS]; ok {
			out[ds] = d
			continue
		}
		var d capDay
		buf = buf[:0]
		// A site's own best day of the last week: over a longer look
		// curtailment and utilisation drift make it unreachable.
		for day := ds - min(r.lookH, 7*24); day < ds; day += 24 {
			n0 := len(buf)
			for k := max(day, 0); k < day+24; k++ {
				if x, ok := s.ratio(k); ok {
					buf = append(buf, x)
				}
			}
			// A day's level is the median of its hours, not the mean:
			// curtailment (the grid switching sites off for a few peak
			// hours) would pull a mean down and make the site's normal
			// running draw look like a step up the next day.
			if n := len(buf) - n0; n >= 12 {
				d.days++
				d.bestDay = math.Max(d.bestDay, medianOf(buf[n0:]))
			}
		}
		d.n = len(buf)
		d.med = medianOf(buf)
		out[ds] = d
		cache[r.g.t0+int64(ds)*hourS] = d
	}
	return out
}

// overCapacity raises over_capacity on site meters whose hourly draw stays
// above what their active registered rigs can draw, plus the cooling
// allowance, for OverCapacityHours in a row; or, at a site that normally
// runs at full registered power, rises well above its own best day and
// above nameplate. The excess is the draw of the unregistered share of the
// load: observed x (1 - normal ratio / ratio during the episode), which
// curtailment and utilisation changes leave unbiased.
func (r *run) overCapacity() error {
	sites := r.sites()
	days := make([]map[int]capDay, len(sites))
	peer := map[int]float64{}
	for i, s := range sites {
		days[i] = r.capDays(s)
	}
	for ds := range days0(days) {
		var meds []float64
		for i := range sites {
			if d := days[i][ds]; d.n >= 24 {
				meds = append(meds, d.med)
			}
		}
		if len(meds) >= 3 {
			peer[ds] = medianOf(meds)
		}
	}
	K := r.cfg.OverCapacityHours
	allow := 1 + r.cfg.CoolingAllowance
	for i, s := range sites {
		id := r.g.ids[s.mi]
		for h := r.hFirst; h <= r.hLast; h++ {
			ep := r.episode(schemas.KindOverCapacity, id, "")
			ds := r.dayOf(h)
			if ep != nil {
				if !ep.refOwn && peer[ds] > 0 {
					ep.ref = peer[ds]
				}
				ep.cur.hours++
				if x, ok := s.ratio(h); ok {
					ep.cur.valid++
					ep.cur.obs += s.p[h]
					ep.cur.cap += s.c[h]
					ep.cur.ratios = append(ep.cur.ratios, x)
				}
				var sum float64
				var n int
				for k := max(h-23, 0); k <= h; k++ {
					if x, ok := s.ratio(k); ok {
						sum += x
						n++
					}
				}
				r.step(ep, h, n > 0 && sum/float64(n) >= ep.cut)
				continue
			}
			if h-K+1 < 0 {
				continue
			}
			rmin, rsum := math.Inf(1), 0.0
			ok := true
			for k := h - K + 1; k <= h && ok; k++ {
				var x float64
				x, ok = s.ratio(k)
				rmin = math.Min(rmin, x)
				rsum += x
			}
			if !ok {
				continue
			}
			d := days[i][ds]
			rmean := rsum / float64(K)
			abs := rmin > allow
			rel := d.days >= 3 && d.med >= 0.9 && rmin >= math.Max(1, d.bestDay*(1+r.cfg.RelativeStep))
			if !abs && !rel {
				continue
			}
			base := 1.0
			switch {
			case d.n >= 24:
				base = d.med
			case peer[ds] > 0:
				base = peer[ds]
			}
			base = math.Min(base, rmean/allow)
			cut := (rmean + base) / 2
			k := h - K + 1
			for k > 0 {
				if s.c[k-1] <= 0 {
					break
				}
				if x, ok := s.ratio(k - 1); ok && x < cut {
					break
				}
				k--
			}
			for k < h && math.IsNaN(s.p[k]) {
				k++
			}
			ep = r.open(schemas.KindOverCapacity, id, "", h, r.g.t0+int64(k)*hourS, r.meterAlert(s.mi))
			ep.level, ep.cut = rmean, cut
			var pre []float64
			for j := max(0, k-r.lookH); j < k; j++ {
				if x, ok := s.ratio(j); ok {
					pre = append(pre, x)
				}
			}
			ep.ref, ep.refOwn = 1.0, false
			if len(pre) >= 24 {
				ep.ref, ep.refOwn = medianOf(pre), true
			} else if peer[ds] > 0 {
				ep.ref = peer[ds]
			}
			ep.model = "allowance"
			if !abs {
				ep.model = "own_history"
			}
			ep.finish = finishOverCapacity
			for j := k; j <= h; j++ {
				ep.cur.hours++
				if x, ok := s.ratio(j); ok {
					ep.cur.valid++
					ep.cur.obs += s.p[j]
					ep.cur.cap += s.c[j]
					ep.cur.ratios = append(ep.cur.ratios, x)
				}
			}
			r.step(ep, h, true)
		}
	}
	return nil
}

func days0(days []map[int]capDay) map[int]bool {
	out := map[int]bool{}
	for _, m := range days {
		for d := range m {
			out[d] = true
		}
	}
	return out
}

func finishOverCapacity(ep *episode, a *schemas.Alert, cfg *Config) {
	s := &ep.held
	sc := s.scale()
	obs := s.obs * sc
	capKWh := s.cap * sc
	med := medianOf(s.ratios)
	share := 0.0
	if med > ep.ref {
		share = 1 - ep.ref/med
	}
	excess := obs * share
	allowed := capKWh * (1 + cfg.CoolingAllowance)
	setEnergy(cfg, a, obs, obs-excess, excess)
	hidden := med/ep.ref - 1
	a.Score = round(100*hidden, 2)
	a.Severity = schemas.SeverityWarning
	if hidden >= 0.25 || excess >= 50000 {
		a.Severity = schemas.SeverityCritical
	}
	meanCap := capKWh / math.Max(1, float64(s.hours))
	a.Evidence = map[string]any{
		"registered_capacity_kw": round(meanCap, 1), "cooling_allowance": cfg.CoolingAllowance,
		"median_draw_ratio": round(med, 4), "detection_draw_ratio": round(ep.level, 4),
		"normal_draw_ratio": round(ep.ref, 4), "normal_ratio_source": map[bool]string{true: "own_history", false: "peer_sites"}[ep.refOwn],
		"rule": ep.model, "allowed_kwh": round(allowed, 1), "above_allowance_kwh": round(math.Max(0, obs-allowed), 1),
		"hours": s.hours, "metered_hours": s.valid, "unregistered_share": round(share, 4),
	}
	where := a.SiteID
	if a.OperatorID != "" {
		where += " of " + a.OperatorID
	}
	if a.Oblast != "" {
		where += ", " + a.Oblast
	}
	a.Summary = fmt.Sprintf("Site %s (meter %s) has drawn %.0f%% more than its %.0f kW of registered rigs normally draw since %s local time: about %s by unregistered machines, worth %s.",
		where, a.MeterID, 100*hidden, meanCap, localTime(a.WindowStart, cfg.Location), fmtKWh(excess), fmtKZT(excess*cfg.TariffKZTPerKWh))
}
