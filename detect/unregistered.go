package detect

import (
	"fmt"
	"math"
	"slices"

	"github.com/rigwatch/rigwatch/schemas"
	"gonum.org/v1/gonum/stat"
)

// hodBaseline is a meter's own load by local hour of day over the lookback
// before one local day: the median and the largest hourly kW seen at each
// hour, and on how many days.
type hodBaseline struct {
	med, max [24]float64
	n        [24]int
}

func (r *run) hodBaseline(mi int32, ds int, buf [][]float64) hodBaseline {
	var b hodBaseline
	for i := range buf {
		buf[i] = buf[i][:0]
	}
	for h := max(ds-r.lookH, 0); h < ds; h++ {
		if p, ok := r.g.power(mi, h); ok {
			buf[r.hod(h)] = append(buf[r.hod(h)], p)
		}
	}
	for i := range 24 {
		b.n[i] = len(buf[i])
		if b.n[i] > 0 {
			b.med[i] = medianOf(buf[i])
			b.max[i] = slices.Max(buf[i])
		}
	}
	return b
}

// unregistered raises unregistered_load on meters with no active registered
// rigs behind them: customer meters, and site meters while their site's
// registered capacity is zero. Mining shows as a step to a flat plateau of
// whole machines (about 3 kW each) that does not follow the hour of day:
//
//   - own history: for UnregisteredHours in a row the meter draws at least
//     max(MinStepKW, MinStepShare x its usual load) more than the most it drew at the same local hour on any day
//     of the lookback, and the step above its usual load at that hour is
//     flat (coefficient of variation at most MaxFlatCV). A legitimately flat
//     load (a 3-shift plant, a hospital, a cold store) is in its own history
//     and does not step; mining started at night or paused for the evening
//     peak steps all the same at night.
//   - no usable history (mining already running when the data starts): a
//     residential meter holding a flat level above ResidentialMaxKW, more
//     than a household connection supplies, for UnregisteredHours.
//   - no usable history, a commercial or residential meter on a plateau of
//     machines (see plateau): every hour at least 3 x MinStepKW and
//     PeerMultiple x its class's typical draw at that hour, flat hour to
//     hour, and with a sub-hourly jitter under PlateauMaxJitter of the
//     level. Shops' and homes' night loads are as present at night but
//     move between readings; ASICs do not. This catches mining running
//     when the data starts, round the clock or at night only.
//   - whatever its history, a commercial meter whose last 24 hours all hold at least 70% of their peak and at
//     least 3 x MinStepKW, with hour-to-hour changes (median) under 0.6% of
//     the level: machines, not people or thermostats (shops follow business
//     hours, cold stores cycle).
//   - a site meter whose registered rigs are all inactive drawing a flat
//     MinStepKW or more.
//
// The excess is the energy above the meter's usual load at each hour (its
// own median before the onset, or its class peers' without history).
func (r *run) unregistered() error {
	g := r.g
	K := r.cfg.UnregisteredHours
	capOf := map[int32]*siteSeries{}
	for _, s := range r.sites() {
		capOf[s.mi] = s
	}
	buf := make([][]float64, 24)
	p := make([]float64, g.n)
	for mi32 := range g.ids {
		mi := int32(mi32)
		m := r.meta[mi]
		if !r.known[mi] {
			continue
		}
		site := capOf[mi]
		if m.Role != schemas.RoleCustomer && site == nil {
			continue
		}
		for h := range g.n {
			if v, ok := g.power(mi, h); ok {
				p[h] = v
			} else {
				p[h] = math.NaN()
			}
		}
		zeroCap := func(h int) bool { return site == nil || site.c[h] <= 0 }
		id := g.ids[mi]
		var base hodBaseline
		baseDay := -1 << 30
		for h := r.hFirst; h <= r.hLast; h++ {
			ep := r.episode(schemas.KindUnregisteredLoad, id, "")
			if ep != nil {
				ep.cur.hours++
				held := 0
				if !math.IsNaN(p[h]) && zeroCap(h) {
					ep.cur.valid++
					ep.cur.obs += p[h]
					ep.cur.exp += ep.hodBase[r.hod(h)]
					if p[h]-ep.hodBase[r.hod(h)] >= ep.cut {
						ep.cur.extra++
					}
				}
				for k := max(h-23, 0); k <= h; k++ {
					if !math.IsNaN(p[k]) && zeroCap(k) && p[k]-ep.hodBase[r.hod(k)] >= ep.cut {
						held++
					}
				}
				r.step(ep, h, held >= 3)
				continue
			}
			if h-K+1 < 0 {
				continue
			}
			ok := true
			for k := h - K + 1; k <= h && ok; k++ {
				ok = !math.IsNaN(p[k]) && zeroCap(k)
			}
			if !ok {
				continue
			}
			win := p[h-K+1 : h+1]
			var hb [24]float64
			rule := ""
			switch {
			case site != nil:
				if slices.Min(win) >= r.cfg.MinStepKW && cv(win) <= r.cfg.MaxFlatCV {
					rule = "site_without_active_rigs"
				}
			default:
				if ds := r.dayOf(h); ds != baseDay {
					base, baseDay = r.hodBaseline(mi, ds, buf), ds
				}
				steps := make([]float64, 0, K)
				own := true
				for k := h - K + 1; k <= h && own; k++ {
					j := r.hod(k)
					own = base.n[j] >= 3 && p[k]-base.max[j] >= math.Max(r.cfg.MinStepKW, r.cfg.MinStepShare*base.med[j])
					steps = append(steps, p[k]-base.med[j])
				}
				if own && cv(steps) <= r.cfg.MaxFlatCV {
					rule, hb = "own_history", base.med
					break
				}
				if (m.Class == schemas.ClassCommercial || m.Class == schemas.ClassResidential) && p[h] >= 3*r.cfg.MinStepKW {
					if peers := r.classPeers(m.Class, r.dayOf(h)); r.plateau(mi, p, h, peers) {
						rule, hb = "flat_plateau", peers
						break
					}
				}
				if fw := 24; m.Class == schemas.ClassCommercial && h >= fw-1 && r.flatDay(p[h-fw+1:h+1]) {
					rule = "flat_round_the_clock"
					hb = r.classPeers(m.Class, r.dayOf(h))
					break
				}
				if m.Class == schemas.ClassResidential && slices.Min(win) >= r.cfg.ResidentialMaxKW && cv(win) <= r.cfg.MaxFlatCV {
					rule = "above_household_supply"
					hb = r.classPeers(m.Class, r.dayOf(h))
				}
			}
			if rule == "" {
				continue
			}
			var level float64
			for k := h - K + 1; k <= h; k++ {
				level += p[k] - hb[r.hod(k)]
			}
			level /= float64(K)
			cut := level / 2
			k := h - K + 1
			for k > 0 && zeroCap(k-1) && (math.IsNaN(p[k-1]) || p[k-1]-hb[r.hod(k-1)] >= cut) {
				k--
			}
			for k < h && math.IsNaN(p[k]) {
				k++
			}
			a := r.meterAlert(mi)
			ep = r.open(schemas.KindUnregisteredLoad, id, "", h, g.t0+int64(k)*hourS, a)
			ep.level, ep.cut, ep.hodBase, ep.model = level, cut, hb, rule
			ep.base.Evidence = map[string]any{"class": m.Class, "role": m.Role}
			ep.finish = finishUnregistered
			for j := k; j <= h; j++ {
				ep.cur.hours++
				if !math.IsNaN(p[j]) && zeroCap(j) {
					ep.cur.valid++
					ep.cur.obs += p[j]
					ep.cur.exp += hb[r.hod(j)]
					if p[j]-hb[r.hod(j)] >= cut {
						ep.cur.extra++ // hours carrying the step
					}
				}
			}
			r.step(ep, h, true)
		}
	}
	return nil
}

// cv is the coefficient of variation of v (0 for a single value).
func cv(v []float64) float64 {
	if len(v) < 2 {
		return 0
	}
	m, s := stat.MeanStdDev(v, nil)
	if m <= 0 {
		return math.Inf(1)
	}
	return s / m
}

// classPeers returns the typical load of a meter class at each local hour
// over the lookback before local day ds: the median, over a fixed sample of
// the class's customer meters, of their own median kW at that hour.
func (r *run) classPeers(class string, ds int) [24]float64 {
	key := fmt.Sprint(class, ds)
	if v, ok := r.peerCache[key]; ok {
		return v
	}
	if r.peerCache == nil {
		r.peerCache = map[string][24]float64{}
	}
	var ms []int32
	for mi := range r.g.ids {
		if r.known[mi] && r.meta[mi].Role == schemas.RoleCustomer && r.meta[mi].Class == class {
			ms = append(ms, int32(mi))
		}
	}
	slices.SortFunc(ms, func(a, b int32) int { return cmpStr(r.g.ids[a], r.g.ids[b]) })
	stride := max(1, len(ms)/200)
	buf := make([][]float64, 24)
	meds := make([][]float64, 24)
	for i := 0; i < len(ms); i += stride {
		b := r.hodBaseline(ms[i], ds, buf)
		for j := range 24 {
			if b.n[j] > 0 {
				meds[j] = append(meds[j], b.med[j])
			}
		}
	}
	var v [24]float64
	for j := range 24 {
		if len(meds[j]) > 0 {
			v[j] = medianOf(meds[j])
		}
	}
	r.peerCache[key] = v
	return v
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

func finishUnregistered(ep *episode, a *schemas.Alert, cfg *Config) {
	s := &ep.held
	sc := s.scale()
	obs, exp := s.obs*sc, s.exp*sc
	excess := math.Max(0, obs-exp)
	setEnergy(cfg, a, obs, exp, excess)
	rigs := ep.level / 3.25
	a.Score = round(ep.level, 1)
	a.Severity = schemas.SeverityWarning
	if ep.level >= 30 {
		a.Severity = schemas.SeverityCritical
	}
	duty := 0.0
	if s.valid > 0 {
		duty = s.extra / float64(s.valid)
	}
	pattern := "round the clock"
	switch {
	case duty < 0.55:
		pattern = "mostly at night"
	case duty < 0.9:
		pattern = "most of the day"
	}
	if ep.held.hours <= 24 {
		pattern = "steadily"
	}
	ev := a.Evidence
	ev["step_kw"] = round(ep.level, 2)
	ev["rigs_equivalent"] = round(rigs, 1)
	ev["rule"] = ep.model
	ev["hours"] = s.hours
	ev["metered_hours"] = s.valid
	ev["hours_with_step_share"] = round(duty, 3)
	who := "Customer meter " + a.MeterID
	if a.SiteID != "" {
		who = "Site meter " + a.MeterID + " of site " + a.SiteID + ", whose registered rigs are all inactive,"
	} else if c, ok := ev["class"].(string); ok && c != "" {
		who += " (" + c + ")"
	}
	where := "on feeder " + a.FeederID
	if a.Oblast != "" {
		where += ", " + a.Oblast
	}
	a.Summary = fmt.Sprintf("%s %s has carried a flat extra load of %.0f kW (about %.0f mining rigs) %s since %s local time: %s above its normal use, worth %s.",
		who, where, ep.level, math.Max(1, rigs), pattern, localTime(a.WindowStart, cfg.Location), fmtKWh(excess), fmtKZT(excess*cfg.TariffKZTPerKWh))
}

// plateau reports whether meter mi ends hour h on the plateau of machines,
// judged without its own history (p is its hourly kW):
//
//   - every hour of the window metered, each at least 3 x MinStepKW (a
//     handful of rigs) and at least PeerMultiple x the class's typical
//     draw at that local hour;
//   - the hourly means flat (CV at most PlateauMaxJitter): a plateau, not a
//     ramp or a cycle;
//   - the sub-hourly jitter at most PlateauMaxJitter of the level, over a
//     window of at least UnregisteredHours widened until it holds
//     PlateauMinDiffs reading-to-reading differences.
//
// The jitter is what tells machines from people: a shop's night load of
// refrigeration and lighting, or a household, is just as present at night
// but moves between readings; a load of ASICs does not. Meters read once
// an hour give no jitter within the hour, and successive hourly means
// then stand in for it.
func (r *run) plateau(mi int32, p []float64, h int, peers [24]float64) bool {
	K := r.cfg.UnregisteredHours
	floor := 3 * r.cfg.MinStepKW
	var sum float64
	n := 0
	for k := h; k >= 0 && k > h-24; k-- {
		v := p[k]
		if math.IsNaN(v) || !r.g.full(mi, k) || v < floor || v < r.cfg.PeerMultiple*peers[r.hod(k)] {
			return false
		}
		sum += v
		n++
		if n < K {
			continue
		}
		win := p[k : h+1]
		level := sum / float64(n)
		sd, d := r.g.jitter(mi, k, h)
		if d == 0 && n >= r.cfg.PlateauMinDiffs+1 {
			// hourly readings: the hour-to-hour changes are the jitter
			var sq float64
			for i := 1; i < len(win); i++ {
				sq += (win[i] - win[i-1]) * (win[i] - win[i-1])
			}
			sd, d = math.Sqrt(sq/float64(2*(len(win)-1))), len(win)-1
		}
		// Half the differences suffice for a plateau twice as flat: the
		// estimate's relative error grows as 1/sqrt(d), so a shorter window
		// needs a lower bar to keep the same margin from loads that move.
		// This lets 30-minute meters catch a night's mining.
		switch {
		case d >= r.cfg.PlateauMinDiffs:
		case 2*d >= r.cfg.PlateauMinDiffs && sd <= r.cfg.PlateauMaxJitter/2*level:
		default:
			continue
		}
		if cv(win) <= r.cfg.PlateauMaxJitter && sd <= r.cfg.PlateauMaxJitter*level {
			return true
		}
		if d >= r.cfg.PlateauMinDiffs {
			return false
		}
	}
	return false
}

// flatDay reports whether hourly values are the plateau of machines: every
// hour metered, the lowest at least 70% of the highest and at least 3 x
// MinStepKW, and the median hour-to-hour change under 0.6% of the median
// level.
func (r *run) flatDay(day []float64) bool {
	for _, v := range day {
		if math.IsNaN(v) {
			return false
		}
	}
	lo, hi := slices.Min(day), slices.Max(day)
	if lo < 3*r.cfg.MinStepKW || lo < 0.7*hi {
		return false
	}
	d := make([]float64, len(day)-1)
	for i := range d {
		d[i] = math.Abs(day[i+1] - day[i])
	}
	return medianOf(d) <= 0.006*medianOf(day)
}
