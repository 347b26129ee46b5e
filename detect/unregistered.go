package detect

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/stat"

	"github.com/rigwatch/rigwatch/schemas"
)

// unregistered raises unregistered_load on meters with no active registered
// rigs behind them: customer meters, and site meters while their site's
// registered capacity is zero. Mining is a step to a flat plateau of whole
// machines (about 3 kW each) that runs round the clock or at night, on
// weekdays and weekends alike; a business's load follows its opening hours
// and its calendar. So:
//
//   - own history: for UnregisteredHours in a row the meter draws at least
//     max(MinStepKW, MinStepShare x its usual load) more than the most it
//     drew at that hour on any day of the lookback (four weeks: a closed or
//     quiet week does not hide its normal level), the step above its usual
//     load for that hour of a weekday or a weekend day flat (coefficient of
//     variation at most MaxFlatCV), and, for a meter that is not a
//     household's, present in at least two hours at which the meter is
//     normally idle: a business returning from a holiday steps up in its
//     opening hours, machines step up at night too.
//   - no usable history (mining already running when the data starts): a
//     commercial or residential meter on a plateau of machines (plateau):
//     every hour at least 3 x MinStepKW, PeerMultiple x what its class
//     typically draws then and above its class's PeerQuantile (a large
//     shop's steady plant is usual among shops), flat hour to hour and
//     within the hour (jitter under PlateauMaxJitter: ASICs do not move
//     between readings, people and thermostats do).
//   - a commercial meter whose last 24 hours are flat round the clock at
//     such a level (flatDay), whatever its history.
//   - a residential meter holding a flat level above ResidentialMaxKW, more
//     than a household connection supplies.
//   - a site meter whose registered rigs are all inactive drawing a flat
//     MinStepKW or more.
//
// A step down is never mining, and hours in which a meter repeats one
// reading (stuck) are not judged at all (quality reports them). An open
// finding is re-judged each local day against a baseline that grows with
// the history, leaving out only the days on which it held: when the extra
// load is gone, or turns out to follow the meter's own business hours, it
// closes.
func (r *run) unregistered() error {
	g := r.g
	K := r.cfg.UnregisteredHours
	capOf := make([]*siteSeries, len(g.ids))
	for _, s := range r.sites() {
		capOf[s.mi] = s
	}
	// meters with a finding open: no other meter has one until it opens
	open := map[string]bool{}
	r.epMu.Lock()
	for _, ep := range r.e.eps {
		if ep.kind == schemas.KindUnregisteredLoad {
			open[ep.entity] = true
		}
	}
	r.epMu.Unlock()
	var win, raw, sorted []float64
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
		p := kw{g, mi}
		zeroCap := func(h int) bool { return site == nil || site.c[h] <= 0 }
		id := g.ids[mi]
		household := m.Class == schemas.ClassResidential
		hasEp := open[id]
		for h := r.hFirst; h <= r.hLast; h++ {
			if hasEp {
				if ep := r.episode(schemas.KindUnregisteredLoad, id, ""); ep != nil {
					r.holdUnregistered(ep, mi, p, h, zeroCap, household)
					continue
				}
			}
			if h-K+1 < 0 {
				continue
			}
			ok := true
			for k := h - K + 1; k <= h && ok; k++ {
				ok = zeroCap(k)
			}
			if !ok {
				continue
			}
			// The same test as below on the hours' power before the test
			// for a stuck register (an hour it fails is NaN below, and
			// skipped either way): most meters end here, cheaply.
			raw = raw[:0]
			for k := h - K + 1; k <= h && ok; k++ {
				var v float64
				v, ok = g.power(mi, k)
				raw = append(raw, v)
			}
			if !ok {
				continue
			}
			if slices.Min(raw) < r.cfg.MinStepKW {
				sorted = append(sorted[:0], raw...)
				if medianSorting(sorted) < 3*r.cfg.MinStepKW {
					continue
				}
			}
			win = p.window(win, h-K+1, h)
			if slices.ContainsFunc(win, math.IsNaN) {
				continue
			}
			// Every rule below needs a step of MinStepKW in every hour or
			// a plateau of three times it: most meters end here.
			if slices.Min(win) < r.cfg.MinStepKW && medianOf(win) < 3*r.cfg.MinStepKW {
				continue
			}
			var base baseline
			var usual func(k int) float64
			rule := ""
			var why []string
			switch {
			case site != nil:
				if slices.Min(win) >= r.cfg.MinStepKW && cv(win) <= r.cfg.MaxFlatCV {
					rule = "site_without_active_rigs"
					usual = func(int) float64 { return 0 }
					why = append(why, fmt.Sprintf("a flat %.0f kW at a site whose registered rigs are all inactive", stat.Mean(win, nil)))
				}
			default:
				base = r.baselineOf(mi, r.dayOf(h))
				// A meter labelled residential whose own usual load is more
				// than a household draws is a building: judged as one.
				hh := household && base.peak() <= r.cfg.ResidentialMaxKW
				if w, ok := r.ownStep(&base, p, h, hh); ok {
					rule, why = "own_history", w
					b := base
					usual = func(k int) float64 { return b.usual(r, k) }
					break
				}
				if m.Class == schemas.ClassCommercial || household {
					peers := r.classPeers(m.Class, r.dayOf(h))
					if w, ok := r.predating(mi, p, h, &peers); ok {
						rule, why = "predating", w
						usual = func(k int) float64 { return peers.med[r.hod(k)] }
					}
				}
			}
			if rule == "" {
				continue
			}
			var level float64
			for k := h - K + 1; k <= h; k++ {
				level += p.at(k) - usual(k)
			}
			level /= float64(K)
			if level < r.cfg.MinStepKW {
				continue // a step down, or too small to be machines, is never mining
			}
			cut := level / 2
			k := h - K + 1
			for k > 0 && zeroCap(k-1) && (math.IsNaN(p.at(k-1)) || p.at(k-1)-usual(k-1) >= cut) {
				k--
			}
			if rule == "predating" {
				// Machines that pause every day ran on the days before too:
				// walk back day by day while a day holds the plateau (a day
				// that begins before the grid, on its hours in the grid;
				// the onset is then its first metered hour, below).
				for k > 0 {
					n := 0
					for j := max(k-24, 0); j < k; j++ {
						if zeroCap(j) && !math.IsNaN(p.at(j)) && p.at(j)-usual(j) >= cut {
							n++
						}
					}
					if n < K {
						break
					}
					k -= 24
				}
				for k > 0 && zeroCap(k-1) && (math.IsNaN(p.at(k-1)) || p.at(k-1)-usual(k-1) >= cut) {
					k--
				}
			}
			for k < h && math.IsNaN(p.at(k)) {
				k++
			}
			a := r.meterAlert(mi)
			ep := r.open(schemas.KindUnregisteredLoad, id, "", h, g.t0+int64(k)*hourS, a)
			hasEp = true
			ep.level, ep.cut, ep.model = level, cut, rule
			// The usual load the finding measures the extra from, by hour
			// of a weekday and of a weekend day.
			for j := r.dayOf(h) - 24*7; j < r.dayOf(h)+24; j++ {
				if j >= 0 {
					ep.usual[r.slot(j)] = usual(j)
				}
			}
			for j := range 24 {
				ep.idle[j] = base.idle[j] || household || rule != "own_history"
			}
			ep.base.Evidence = map[string]any{"class": m.Class, "role": m.Role, "mining_like": why}
			ep.finish = finishUnregistered
			for j := k; j <= h; j++ {
				ep.cur.hours++
				if !math.IsNaN(p.at(j)) && zeroCap(j) {
					ep.cur.valid++
					ep.cur.obs += p.at(j)
					ep.cur.exp += ep.usual[r.slot(j)]
					if p.at(j)-ep.usual[r.slot(j)] >= cut {
						ep.cur.extra++ // hours carrying the step
					}
				}
			}
			ep.minedDays = map[int64]bool{r.tick(r.dayOf(h) - 1): true}
			r.step(ep, h, true)
		}
	}
	return nil
}

// ownStep reports whether the UnregisteredHours ending at h step up from
// the meter's own history (see unregistered), and why.
func (r *run) ownStep(b *baseline, p kw, h int, household bool) ([]string, bool) {
	K := r.cfg.UnregisteredHours
	steps := make([]float64, 0, K)
	idle := 0
	var above float64
	// Enough history to know the meter's normal: two days of the hour for
	// a household (no household steps up by machines' kilowatts), five for
	// a business (most of its week). A business
	// whose history has no daily shape (closed, or running round the
	// clock) is judged on a whole day below.
	minDays := uint16(2)
	if !household {
		minDays = 5
	}
	for k := h - K + 1; k <= h; k++ {
		j := r.hod(k)
		u := b.usual(r, k)
		if b.n[j] < minDays || p.at(k)-b.max[j] < math.Max(r.cfg.MinStepKW, r.cfg.MinStepShare*u) {
			return nil, false
		}
		steps = append(steps, p.at(k)-u)
		above += p.at(k) - b.max[j]
		if b.idle[j] {
			idle++
		}
	}
	if cv(steps) > r.cfg.MaxFlatCV {
		return nil, false
	}
	if !household && !b.shaped {
		// No daily shape in its history (a closed building, a cold store):
		// its idle hours are unknown, and only a step round the clock is
		// mining-like.
		for k := h - 23; k <= h-K; k++ {
			j := r.hod(k)
			if k < 0 || math.IsNaN(p.at(k)) || b.n[j] < minDays || p.at(k)-b.max[j] < math.Max(r.cfg.MinStepKW, r.cfg.MinStepShare*b.usual(r, k)) {
				return nil, false
			}
			steps = append(steps, p.at(k)-b.usual(r, k))
		}
		if cv(steps) > r.cfg.MaxFlatCV {
			return nil, false
		}
		idle = 24
	} else if !household && idle < 2 {
		return nil, false
	}
	days := 0
	for j := range 24 {
		days = max(days, int(b.n[j]))
	}
	why := []string{
		fmt.Sprintf("a step of %.0f kW above its usual use for the hour and kind of day, %.0f kW above the most it drew at those hours on any of the previous %d days", stat.Mean(steps, nil), above/float64(K), days),
		fmt.Sprintf("flat: the extra load varies by %.0f%% from hour to hour", 100*cv(steps)),
	}
	switch {
	case !household && !b.shaped:
		why = append(why, "present round the clock for 24 hours")
	case !household:
		why = append(why, fmt.Sprintf("present in %d hours at which the meter is normally idle (a business steps up in its opening hours, machines at night too)", idle))
	}
	return why, true
}

// ruleHolds reports whether the rule that opened a finding without a step
// in its history still holds at hour h: the load is still the plateau of
// machines.
func (r *run) ruleHolds(ep *episode, mi int32, p kw, h int) bool {
	peers := r.classPeers(r.meta[mi].Class, r.dayOf(h))
	_, ok := r.predating(mi, p, h, &peers)
	return ok
}

// holdUnregistered carries an open unregistered_load finding over hour h.
// One opened on the meter's own history holds while, in the last 24 hours,
// the meter drew the step over its usual load in at least 3 hours (for a
// meter not a household's, one of them an idle hour); each local day its
// usual load is re-judged over the lookback without the days on which the
// finding held. One opened without history holds while its rule still
// finds the plateau of machines: a building whose closed holiday looked
// flat shows its opening hours again.
func (r *run) holdUnregistered(ep *episode, mi int32, p kw, h int, zeroCap func(int) bool, household bool) {
	ds := r.dayOf(h)
	if day := r.tick(ds - 1); ep.model == "own_history" && day != ep.modelDay {
		ep.modelDay = day
		b := r.meterBaseline(mi, p, ds, func(d int) bool { return ep.minedDays[r.tick(d-1)] })
		for k := ds - 24*7; k < ds; k++ {
			if k >= 0 && b.nmed[r.slot(k)] >= 2 {
				ep.usual[r.slot(k)] = b.med[r.slot(k)]
			}
		}
		if !household {
			ep.idle = b.idle
		}
	}
	ep.cur.hours++
	if !math.IsNaN(p.at(h)) && zeroCap(h) {
		ep.cur.valid++
		ep.cur.obs += p.at(h)
		ep.cur.exp += ep.usual[r.slot(h)]
		if p.at(h)-ep.usual[r.slot(h)] >= ep.cut {
			ep.cur.extra++
		}
	}
	held, idle := 0, 0
	for k := max(h-23, 0); k <= h; k++ {
		if !math.IsNaN(p.at(k)) && zeroCap(k) && p.at(k)-ep.usual[r.slot(k)] >= ep.cut {
			held++
			if ep.idle[r.hod(k)] {
				idle++
			}
		}
	}
	ok := held >= 3 && idle >= 1
	if ep.model == "predating" {
		ok = r.ruleHolds(ep, mi, p, h)
	}
	if ok {
		ep.minedDays[r.tick(ds-1)] = true
	}
	r.step(ep, h, ok)
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
	why := ""
	if w, ok := ev["mining_like"].([]string); ok && len(w) > 0 {
		why = " Mining-like: " + strings.Join(w, "; ") + "."
	}
	a.Summary = fmt.Sprintf("%s %s has carried a flat extra load of %.0f kW (about %.0f mining rigs) %s since %s local time: %s above its normal use, worth %s.%s",
		who, where, ep.level, math.Max(1, rigs), pattern, localTime(a.WindowStart, cfg.Location), fmtKWh(excess), fmtKZT(excess*cfg.TariffKZTPerKWh), why)
}

// predating reports whether meter mi's last seven days show machines that
// were running before them (mining under way when the data starts, which
// its own history cannot show as a step), and why. Each of the seven days
// holds at least UnregisteredHours at one level L (within 10% of the level
// of the last UnregisteredHours), at least 3 x MinStepKW, PeerMultiple
// times what its class typically draws at those hours and above its class's
// PeerQuantile; its other hours stay below half of L: machines added to a
// small load, not a building's base under its working hours; and the
// plateau is steady between readings (jitter at most PlateauMaxJitter:
// ASICs at fixed clocks do not move, people and thermostats do). Mining
// round the clock gives 24 such hours a day, at night only ten or so, on
// weekdays and weekends alike; a shop's steady plant runs under its opening
// hours, a building's closed holiday is followed by its working days, and a
// large shop's plant is usual among shops.
func (r *run) predating(mi int32, p kw, h int, peers *peerProfile) ([]string, bool) {
	const days = 7
	K := r.cfg.UnregisteredHours
	win := p.window(nil, h-K+1, h)
	if slices.ContainsFunc(win, math.IsNaN) {
		return nil, false
	}
	L := medianOf(win)
	if L < 3*r.cfg.MinStepKW {
		return nil, false
	}
	var on []int
	ratio := math.Inf(1)
	paused := 0 // days on which the plateau switched off
	for d := 0; d < days; d++ {
		n, below, above, between := 0, 0, 0, 0
		for k := h - 24*d - 23; k <= h-24*d; k++ {
			v := p.at(k)
			switch {
			case math.IsNaN(v):
			case math.Abs(v-L) <= 0.1*L:
				j := r.hod(k)
				if peers.med[j] <= 0 || v < r.cfg.PeerMultiple*peers.med[j] || v <= peers.hi[j] {
					return nil, false
				}
				ratio = math.Min(ratio, v/peers.med[j])
				on = append(on, k)
				n++
			case v < 0.5*L:
				below++
			case v > 1.1*L:
				above++
			default:
				between++ // the rest of the load while machines pause
			}
		}
		if between > 4 {
			return nil, false // a ramp, not machines switched
		}
		// Hours above the plateau (a business's hours on top of machines)
		// count only on a day the plateau also switched off: a building's
		// base never does.
		if n < K || (above > 0 || between > 0) && below < 2 {
			return nil, false
		}
		if below >= 2 {
			paused++
		}
	}
	// Jitter inside the plateau: an hour whose neighbours are on it too
	// (the step onto the plateau is booked to its first hour).
	onSet := map[int]bool{}
	for _, k := range on {
		onSet[k] = true
	}
	var sq float64
	nd := 0
	for _, k := range on {
		if onSet[k-1] && onSet[k+1] {
			sq += float64(r.g.dsqRow(mi)[k])
			nd += int(r.g.dnRow(mi)[k])
		}
	}
	if nd == 0 {
		// hourly readings: consecutive plateau hours stand in
		for i := 1; i < len(on); i++ {
			if on[i-1]-on[i] == 1 {
				d := p.at(on[i]) - p.at(on[i-1])
				sq += d * d
				nd++
			}
		}
	}
	if nd < r.cfg.PlateauMinDiffs {
		return nil, false
	}
	sd := math.Sqrt(sq / float64(2*nd))
	if sd > r.cfg.PlateauMaxJitter*L {
		return nil, false
	}
	return []string{
		fmt.Sprintf("the same %.0f kW for %.0f hours a day on each of the last %d days, weekdays and weekend alike: running before the data began", L, float64(len(on))/days, days),
		fmt.Sprintf("switched off to under half of that on %d of those days, and never a level in between: machines switched, not a building's base under its working hours", paused),
		fmt.Sprintf("steady within %.1f%% between readings (machines at fixed clocks; people and thermostats move the load)", 100*sd/L),
		fmt.Sprintf("at least %.1f times what %s meters typically draw at those hours, and above %.0f%% of them", ratio, r.meta[mi].Class, 100*r.cfg.PeerQuantile),
	}, true
}
