package detect

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat"

	"github.com/rigwatch/rigwatch/schemas"
)

// feederSeries is a feeder's hourly energy balance: what its head meter
// measured and what its other meters together measured, over the hours in
// which every one of them reported the whole hour. The engine keeps it
// between calls, aligned with its grid.
type feederSeries struct {
	id, class string
	head      int32
	members   int
	m, hd     []float64
	complete  []bool
	models    map[int]lossModel // judged model by local day start hour, this call
	// the head's and every member's energy, complete or not, and how many
	// members
	headE, all []float64
	cnt        []int32
	// members by local day (Unix s): nil when they change within the day;
	// and the most members at an hour of the day
	mem  map[int64][]int32
	nmem map[int64]int
}

// feeders returns the feeders of the grid (those whose head meter has
// readings), ordered by head meter id, with their hourly balance derived
// for the hours that changed since the previous call.
func (r *run) feeders() []*feederSeries {
	if r.fs != nil {
		return r.fs
	}
	st, g := r.e.st, r.g
	out := []*feederSeries{}
	for mi := range g.ids {
		m := r.meta[mi]
		if !r.known[mi] || m.Role != schemas.RoleFeederHead || m.FeederID == "" {
			continue
		}
		f, from := st.feeders[m.FeederID], r.fedFrom
		if f == nil || f.head != int32(mi) || len(f.m) != g.n {
			f = &feederSeries{id: m.FeederID, head: int32(mi), m: make([]float64, g.n), hd: make([]float64, g.n),
				complete: make([]bool, g.n), headE: make([]float64, g.n), all: make([]float64, g.n), cnt: make([]int32, g.n),
				mem: map[int64][]int32{}, nmem: map[int64]int{}}
			st.feeders[m.FeederID] = f
			from = 0
		}
		f.class = m.Class
		f.models = map[int]lossModel{}
		r.balance(f, from)
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *feederSeries) int { return strings.Compare(g.ids[a.head], g.ids[b.head]) })
	r.fs = out
	return out
}

// balance derives feeder f's hourly balance from grid hour from on.
func (r *run) balance(f *feederSeries, from int) {
	g := r.g
	for day := range f.nmem {
		if day < g.t0 || day >= g.t0+int64(r.dayOf(from))*hourS {
			delete(f.nmem, day)
		}
	}
	for day := range f.mem {
		if day < g.t0 {
			delete(f.mem, day)
		}
	}
	var members []int32
	day := math.MinInt
	for h := from; h < g.n; h++ {
		// membership at the start and end of each local day; hour by hour
		// on the days it changes
		ds := r.dayOf(h)
		key := g.t0 + int64(ds)*hourS
		if ds != day {
			day = ds
			var ok bool
			if members, ok = f.mem[key]; !ok {
				var k1, k2 string
				members, k1 = r.members(f.id, g.hourTime(ds).Add(time.Second))
				_, k2 = r.members(f.id, g.hourTime(ds+24).Add(-time.Second))
				if k1 != k2 {
					members = nil
				}
				f.mem[key] = members
			}
		}
		ms := members
		if ms == nil {
			ms, _ = r.members(f.id, g.hourTime(h).Add(30*time.Minute))
		}
		f.nmem[key] = max(f.nmem[key], len(ms))
		ok := g.full(f.head, h)
		var sum float64
		for _, x := range ms {
			ok = ok && g.full(x, h)
			sum += float64(g.eRow(x)[h])
		}
		head := float64(g.eRow(f.head)[h])
		m, hd := 0.0, 0.0
		if ok {
			m, hd = sum, head
		}
		empty := !ok && head == 0 && sum == 0 && !f.complete[h] && f.headE[h] == 0 && f.all[h] == 0
		if !empty && (ok != f.complete[h] || head != f.headE[h] || sum != f.all[h] || int32(len(ms)) != f.cnt[h]) {
			// the hour as stored for the pages changed
			r.e.feederHours = append(r.e.feederHours, schemas.FeederHour{FeederID: f.id, Hour: g.hourTime(h),
				HeadKWh: head, MetersKWh: sum, Meters: len(ms), Complete: ok})
		}
		f.complete[h], f.m[h], f.hd[h], f.headE[h], f.all[h], f.cnt[h] = ok, m, hd, head, sum, int32(len(ms))
	}
	f.members = 0
	for _, n := range f.nmem {
		f.members = max(f.members, n)
	}
}

// members returns the grid indexes of the meters on a feeder at t, other
// than its head, and a key naming the set. A meter with no reading at all
// in the grid is left out: it has no data to balance.
func (r *run) members(feeder string, t time.Time) ([]int32, string) {
	ms := r.e.reg.FeederMeters(feeder, t)
	out := make([]int32, 0, len(ms))
	var key strings.Builder
	for _, m := range ms {
		if m.Role == schemas.RoleFeederHead {
			continue
		}
		key.WriteString(m.MeterID)
		key.WriteByte(',')
		if i, ok := r.g.idx[m.MeterID]; ok && r.g.seen[i] > r.g.t0 {
			out = append(out, i)
		}
	}
	return out, key.String()
}

// ownFit fits a feeder's loss model on the complete hours of the lookback
// before local day ds.
func (r *run) ownFit(f *feederSeries, ds int) lossModel {
	var xs, ys []float64
	from := max(ds-r.lookH, 0)
	// Hours within six of one whose balance is impossible are left out
	// too: the customers switched away and back do not all go at once.
	near := make([]bool, ds-from)
	for h := from; h < ds; h++ {
		if f.complete[h] && impossible(f.hd[h], f.m[h]) {
			for k := max(h-6, from); k <= min(h+6, ds-1); k++ {
				near[k-from] = true
			}
		}
	}
	// Days whose balance sits well below the feeder's usual are left out
	// as well: a block of its customers switched away for a day or two
	// leaves its head short by less than its losses, which would pull the
	// lower envelope down with it.
	var dayShare []float64
	share := map[int]float64{}
	for d := r.dayOf(from); d < ds; d += 24 {
		var v []float64
		for h := max(d, from); h < d+24 && h < ds; h++ {
			if f.complete[h] && f.m[h] > 0 {
				v = append(v, (f.hd[h]-f.m[h])/f.m[h])
			}
		}
		if len(v) >= 12 {
			share[d] = medianOf(v)
			dayShare = append(dayShare, share[d])
		}
	}
	low := math.Inf(-1)
	if len(dayShare) >= 3 {
		med := medianOf(dayShare)
		dev := make([]float64, len(dayShare))
		for i, x := range dayShare {
			dev[i] = math.Abs(x - med)
		}
		low = med - math.Max(4*1.4826*medianOf(dev), 0.01)
	}
	for h := from; h < ds; h++ {
		if sh, ok := share[r.dayOf(h)]; ok && sh < low {
			continue
		}
		if f.complete[h] && f.m[h] > 0 && !near[h-from] {
			xs = append(xs, f.m[h])
			ys = append(ys, f.hd[h]-f.m[h])
		}
	}
	return fitLoss(xs, ys, r.cfg.MinFitHours)
}

// judgeModels fits every feeder's loss model for each local day evaluated,
// and sets the model it is judged against: its own fit unless that is above
// its class's band or far above its peers of the class that day (their
// median plausible loss share plus three robust standard deviations): the
// line-loss ranking utilities use, so that theft under way since before the
// data is never learned as loss.
func (r *run) judgeModels(fs []*feederSeries) {
	type key struct {
		class string
		day   int
	}
	r.fitMissing(fs)
	own := make([]map[int]lossModel, len(fs))
	shares := map[key][]float64{}
	for i, f := range fs {
		own[i] = map[int]lossModel{}
		band := r.cfg.lossBand(f.class)
		fits := r.e.st.fits[f.id]
		if fits == nil {
			fits = map[int64]lossModel{}
			r.e.st.fits[f.id] = fits
		}
		for h := r.hFirst; h <= r.hLast; h++ {
			ds := r.dayOf(h)
			if _, ok := own[i][ds]; ok {
				continue
			}
			day := r.g.t0 + int64(ds)*hourS
			lm, ok := fits[day]
			if !ok {
				lm = r.ownFit(f, ds)
				fits[day] = lm
			}
			own[i][ds] = lm
			if lm.plausible(band) {
				shares[key{f.class, ds}] = append(shares[key{f.class, ds}], lm.share)
			}
		}
	}
	// each class's peers on each day: their shares sorted, and spread
	spread := map[key]float64{}
	for k, v := range shares {
		slices.Sort(v)
		med := quantileSorted(v, 0.5)
		dev := make([]float64, len(v))
		for j, x := range v {
			dev[j] = math.Abs(x - med)
		}
		spread[k] = 1.4826 * medianOf(dev)
	}
	for i, f := range fs {
		band := r.cfg.lossBand(f.class)
		for ds, lm := range own[i] {
			k := key{f.class, ds}
			f.models[ds] = lm.judged(band, shares[k], spread[k])
		}
	}
}

// fitMissing fits, on every core, the feeders' own loss models for the
// days evaluated that have none yet: each fit reads its feeder's hours
// only, so they are independent. judgeModels then finds them all.
func (r *run) fitMissing(fs []*feederSeries) {
	type job struct {
		f    *feederSeries
		ds   int
		fits map[int64]lossModel
		lm   lossModel
	}
	var jobs []job
	for _, f := range fs {
		fits := r.e.st.fits[f.id]
		if fits == nil {
			fits = map[int64]lossModel{}
			r.e.st.fits[f.id] = fits
		}
		last := -1
		for h := r.hFirst; h <= r.hLast; h++ {
			ds := r.dayOf(h)
			if ds == last {
				continue
			}
			last = ds
			if _, ok := fits[r.g.t0+int64(ds)*hourS]; !ok {
				jobs = append(jobs, job{f: f, ds: ds, fits: fits})
			}
		}
	}
	onCores(len(jobs), func(k int) { jobs[k].lm = r.ownFit(jobs[k].f, jobs[k].ds) })
	for _, j := range jobs {
		j.fits[r.g.t0+int64(j.ds)*hourS] = j.lm
	}
}

// judgeable reports whether hour k of a feeder can be judged by model lm.
func (f *feederSeries) judgeable(lm *lossModel, k int) bool {
	return k >= 0 && f.complete[k] && f.m[k] > 0 && lm.inRange(f.m[k]) && !impossible(f.hd[k], f.m[k])
}

// res is hour k's energy unexplained by the meters and model lm.
func (f *feederSeries) res(lm *lossModel, k int) float64 { return f.hd[k] - f.m[k] - lm.loss(f.m[k]) }

// thr is the smallest unexplained energy in hour k that counts.
func (r *run) thr(f *feederSeries, lm *lossModel, k int) float64 {
	return math.Max(math.Max(r.cfg.ImbalanceFraction*f.m[k], 4*lm.sigma), r.cfg.ImbalanceFloor*lm.typM) + lm.allow*f.m[k]
}

// hourlyHold reports whether ImbalanceHours judgeable hours (within twice as
// many) ending at h each leave more unexplained than thr, and returns them.
func (r *run) hourlyHold(f *feederSeries, lm *lossModel, h int) ([]int, bool) {
	K := r.cfg.ImbalanceHours
	var hs []int
	for k := h; k > h-2*K && k >= 0 && len(hs) < K; k-- {
		if f.judgeable(lm, k) {
			if f.res(lm, k) < r.thr(f, lm, k) {
				return nil, false
			}
			hs = append(hs, k)
		}
	}
	return hs, len(hs) == K
}

// dailyHold reports whether the last 24 judgeable hours (within 36) hold
// a day's theft (dayHolds): meters that under-report spread their theft
// over the day.
func (r *run) dailyHold(f *feederSeries, lm *lossModel, h int) ([]int, bool) {
	if !f.judgeable(lm, h) {
		return nil, false
	}
	var hs []int
	for k := h; k > h-36 && k >= 0 && len(hs) < 24; k-- {
		if f.judgeable(lm, k) {
			hs = append(hs, k)
		}
	}
	return hs, r.dayHolds(f, lm, hs)
}

// dayHolds reports whether a day's judgeable hours hs (at least 12) leave
// more unexplained together than DailyImbalanceFraction of their metered
// energy, four robust deviations and the floor, spread over the day: in
// most of its hours, not one hour's spike.
func (r *run) dayHolds(f *feederSeries, lm *lossModel, hs []int) bool {
	if len(hs) < 12 {
		return false
	}
	var res, met, top float64
	pos := 0
	for _, k := range hs {
		x := f.res(lm, k)
		res += x
		met += f.m[k]
		top = math.Max(top, x)
		if x > 0 {
			pos++
		}
	}
	n := float64(len(hs))
	need := math.Max(math.Max(r.cfg.DailyImbalanceFraction*met, 4*lm.sigma*math.Sqrt(n)), r.cfg.ImbalanceFloor*lm.typM*n) + lm.allow*met
	return res >= need && 2*pos >= len(hs) && top <= 0.3*res
}

// imbalance raises feeder_imbalance when a feeder's head meter measures
// more than its meters and their normal technical losses explain: for
// ImbalanceHours complete hours each above ImbalanceFraction of the metered
// energy, four robust standard deviations of the feeder's honest residual
// and ImbalanceFloor of its typical load; or over the last day together
// above DailyImbalanceFraction. The loss model is the feeder's own, fitted
// on the lookback before each local day as the lower envelope of its
// balance, unless its class's band or its peers reject it (judgeModels).
// Hours whose load lies outside the range the model saw (a large site
// closed or connected) are not judged until the model has seen that load.
//
// A feeder whose excess is mirrored by another feeder's deficit (its head
// measuring less than its meters, by the same energy over the same hours)
// is switching, not theft: topology_change names both.
//
// The onset is walked back to the first hour of the run of high residuals;
// the diverted energy is the sum of residuals since, scaled up for hours
// with missing readings; suspect_meters ranks the meters that most likely
// hide it (suspects).
func (r *run) imbalance() error {
	fs := r.feeders()
	r.judgeModels(fs)
	r.e.models = r.e.models[:0]
	for _, f := range fs {
		for ds := r.dayOf(max(r.hReport, r.hFirst)); ds <= r.hLast; ds += 24 {
			if lm := f.models[ds]; lm.ok {
				r.e.models = append(r.e.models, lm.export(f.id, r.g.hourTime(ds)))
			}
		}
	}
	for _, f := range fs {
		for h := r.hFirst; h <= r.hLast; h++ {
			lm := f.models[r.dayOf(h)]
			// Hours of a switching finding explain themselves: an
			// imbalance is judged only on hours after its last.
			floor := -1
			if top := r.episode(schemas.KindTopologyChange, f.id, ""); top != nil {
				r.holdTopology(top, fs, f, h)
				if top.fails < 24 {
					continue
				}
				floor = int((top.last - r.g.t0) / hourS)
			}
			if ep := r.episode(schemas.KindFeederImbalance, f.id, ""); ep != nil {
				r.holdImbalance(ep, f, h)
				continue
			}
			if !lm.ok {
				continue
			}
			if hs, ok := r.deficitHold(f, &lm, h); ok {
				r.donor(fs, f, &lm, hs, h)
				continue
			}
			hs, ok := r.hourlyHold(f, &lm, h)
			daily := false
			if ok && slices.Min(hs) <= floor {
				continue
			}
			if !ok {
				// Theft spread thin needs a model fitted on more than a
				// day or two: three days at least.
				if lm.n < 3*r.cfg.MinFitHours {
					continue
				}
				if hs, ok = r.dailyHold(f, &lm, h); !ok || slices.Min(hs) <= floor {
					continue
				}
				daily = true
			}
			if g, glm := r.mirror(fs, f, &lm, h); g != nil {
				r.openTopology(f, g, &lm, glm, hs, h)
				continue
			}
			r.openImbalance(f, &lm, hs, h, daily)
		}
	}
	return nil
}

// deficitHold reports whether ImbalanceHours complete hours (within twice
// as many) ending at h each show the feeder's head measuring less than its
// meters, beyond metering error and by more than thr below its normal
// losses: physically impossible unless some of its customers are served
// from elsewhere (or its head meter fails).
func (r *run) deficitHold(f *feederSeries, lm *lossModel, h int) ([]int, bool) {
	K := r.cfg.ImbalanceHours
	var hs []int
	for k := h; k > h-2*K && k >= 0 && len(hs) < K; k-- {
		if !f.complete[k] || f.m[k] <= 0 || !lm.inRange(f.m[k]) {
			continue
		}
		if !impossible(f.hd[k], f.m[k]) || -f.res(lm, k) < r.thr(f, lm, k)-lm.allow*f.m[k] {
			return nil, false
		}
		hs = append(hs, k)
	}
	return hs, len(hs) == K
}

// donor handles the other side of switching seen first: feeder f's head
// measures less than its meters. When a feeder whose excess mirrors the
// deficit would itself be found (its own test holds), that feeder raises
// the topology_change; else f raises it, naming the other feeder if one
// mirrors it at all. Both decisions rest on the data alone, so a replay
// and a live run decide alike.
func (r *run) donor(fs []*feederSeries, f *feederSeries, lm *lossModel, hs []int, h int) {
	var other *feederSeries
	for _, g := range fs {
		if g == f {
			continue
		}
		glm := g.models[r.dayOf(h)]
		if !glm.ok {
			continue
		}
		if d, _ := r.mirror(fs, g, &glm, h); d == f {
			if _, ok := r.hourlyHold(g, &glm, h); ok {
				return
			}
			if _, ok := r.dailyHold(g, &glm, h); ok && glm.n >= 3*r.cfg.MinFitHours {
				return
			}
			other = g
			break
		}
	}
	k := slices.Min(hs)
	for k > 0 {
		j := k - 1
		if !f.complete[j] || f.m[j] <= 0 || !impossible(f.hd[j], f.m[j]) {
			break
		}
		k--
	}
	head := r.meta[f.head]
	base := schemas.Alert{EntityType: schemas.EntityFeeder, FeederID: f.id, MeterID: r.g.ids[f.head], Oblast: head.Oblast,
		Evidence: map[string]any{"side": "gives"}}
	ep := r.open(schemas.KindTopologyChange, f.id, "", h, r.g.t0+int64(k)*hourS, base)
	ep.loss, ep.finish, ep.model = *lm, finishTopology, "gives"
	if other != nil {
		ep.related = other.id
		ep.base.Evidence["other_feeder_id"] = other.id
		ep.base.Evidence["other_head_meter_id"] = r.g.ids[other.head]
	}
	for j := k; j <= h; j++ {
		r.countTopology(ep, f, nil, j)
	}
	r.step(ep, h, true)
}

// refreshSuspects is an imbalance episode's refresh: its suspects as of its
// last hour held.
func refreshSuspects(r *run, ep *episode) {
	r.feeders()
	if f := r.e.st.feeders[ep.entity]; f != nil {
		r.suspects(ep, f)
	}
}

// addHour adds hour h of feeder f, judged by model lm, to sums s.
func (s *sums) addHour(f *feederSeries, lm *lossModel, h int) {
	s.hours++
	if f.complete[h] {
		s.valid++
		s.obs += f.hd[h]
		s.exp += f.m[h] + lm.loss(f.m[h])
		s.cap += f.m[h]
	}
}

// resum re-derives an imbalance episode's figures up to hour h (excluded)
// with its current model: the carried figures of hours no longer in the
// grid, plus the grid's hours since.
func (r *run) resum(ep *episode, f *feederSeries, h int) {
	if ep.call != r {
		// First look at the episode in this call: split its figures into
		// what lies before the grid (carried as they are) and the rest.
		ep.call = r
		ep.carry, ep.carryTo = sums{}, ep.start
		if ep.start < r.g.t0 {
			var part sums
			for k := 0; k < h; k++ {
				part.addHour(f, &ep.loss, k)
			}
			c := ep.cur
			c.hours -= part.hours
			c.valid -= part.valid
			c.obs -= part.obs
			c.exp -= part.exp
			c.cap -= part.cap
			ep.carry, ep.carryTo = c, r.g.t0
		}
	}
	first := int((ep.carryTo - r.g.t0) / hourS)
	held := int((ep.last-r.g.t0)/hourS) - 1
	was := ep.held
	cur := ep.carry
	for k := max(first, 0); k < h; k++ {
		cur.addHour(f, &ep.loss, k)
		if k == held {
			ep.held = cur.clone()
		}
	}
	ep.cur = cur
	if ep.held.obs != was.obs || ep.held.exp != was.exp || ep.held.cap != was.cap || ep.held.valid != was.valid {
		// Re-judged (a new day's model): the finding's figures changed
		// though its window did not, and are reported again. A replay
		// reports them at its end all the same.
		ep.touched = true
	}
}

func (r *run) holdImbalance(ep *episode, f *feederSeries, h int) {
	// Re-judge the loss model each local day: the history grows, and a
	// model fitted while the theft was already under way gives way to one
	// that sees honest days.
	ds := r.dayOf(h)
	if day := r.tick(ds - 1); day != ep.modelDay || ep.call != r {
		if nm := f.models[ds]; nm.ok && day != ep.modelDay {
			ep.loss = nm
		}
		ep.modelDay = day
		r.resum(ep, f, h)
	}
	lm := &ep.loss
	ep.cur.addHour(f, lm, h)
	var res, met float64
	for k := max(h-23, 0); k <= h; k++ {
		if f.judgeable(lm, k) {
			res += f.res(lm, k)
			met += f.m[k]
		}
	}
	r.step(ep, h, met > 0 && res >= (0.5*r.cfg.ImbalanceFraction+lm.allow)*met)
}

func (r *run) openImbalance(f *feederSeries, lm *lossModel, hs []int, h int, daily bool) {
	var level, met float64
	for _, k := range hs {
		level += f.res(lm, k)
		met += f.m[k]
	}
	level /= met // unexplained share of the metered energy
	cut := level / 2
	k := slices.Min(hs)
	if daily {
		// Walk back day by day (a day's hours one by one are too noisy for
		// a theft spread over the day) across gaps of honest days as long
		// as an episode bridges going forward: under-reporting meters
		// steal on some days and not others.
		gap, maxGap := 0, int(r.cfg.ImbalanceCloseAfter/(24*time.Hour))
		for j0 := k - 24; j0 >= 0 && gap <= maxGap; j0 -= 24 {
			var day []int
			for j := j0; j < j0+24; j++ {
				if f.judgeable(lm, j) {
					day = append(day, j)
				}
			}
			if r.dayHolds(f, lm, day) {
				k, gap = j0, 0
			} else {
				gap++
			}
		}
	} else {
		for k > 0 {
			j := k - 1
			if f.judgeable(lm, j) && f.res(lm, j) < cut*f.m[j] {
				break
			}
			k--
		}
	}
	for k < h && !f.complete[k] {
		k++
	}
	head := r.meta[f.head]
	rule := "hourly"
	if daily {
		rule = "daily"
	}
	base := schemas.Alert{EntityType: schemas.EntityFeeder, FeederID: f.id, MeterID: r.g.ids[f.head], Oblast: head.Oblast,
		Evidence: map[string]any{"meters": f.members, "rule": rule}}
	ep := r.open(schemas.KindFeederImbalance, f.id, "", h, r.g.t0+int64(k)*hourS, base)
	ep.loss, ep.level, ep.cut, ep.model = *lm, level, cut, rule
	ep.closeAfter = r.cfg.ImbalanceCloseAfter
	ep.finish, ep.refresh = finishImbalance, refreshSuspects
	ep.modelDay, ep.call, ep.carryTo = r.tick(r.dayOf(h)-1), r, ep.start
	for j := k; j <= h; j++ {
		ep.cur.addHour(f, lm, j)
	}
	r.step(ep, h, true)
}

// mirror looks for the other side of switching: a feeder whose head
// measured less than its meters over the last day in step with f's
// excess, hour by hour (the same customers), by about the same energy. It
// returns that feeder and its model.
func (r *run) mirror(fs []*feederSeries, f *feederSeries, lm *lossModel, h int) (*feederSeries, *lossModel) {
	var best *feederSeries
	var bestLM lossModel
	bestErr := 0.4
	var xs, ys []float64
	for _, g := range fs {
		if g == f {
			continue
		}
		glm := g.models[r.dayOf(h)]
		if !glm.ok {
			continue
		}
		xs, ys = xs[:0], ys[:0]
		var excess, deficit, met float64
		for k := max(h-23, 0); k <= h; k++ {
			if !f.complete[k] || !g.complete[k] || f.m[k] <= 0 || g.m[k] <= 0 {
				continue
			}
			x, d := f.res(lm, k), -g.res(&glm, k)
			xs, ys = append(xs, x), append(ys, d)
			excess += x
			deficit += d
			met += g.m[k]
		}
		if len(xs) < 8 || excess <= 0 || deficit < math.Max(4*glm.sigma*math.Sqrt(float64(len(xs))), 0.005*met) {
			continue
		}
		if stat.Correlation(xs, ys, nil) < 0.6 {
			continue
		}
		if e := math.Abs(deficit-excess) / excess; e < bestErr {
			best, bestLM, bestErr = g, glm, e
		}
	}
	if best == nil {
		return nil, nil
	}
	// The other side must not mirror another feeder better: one block of
	// customers went to one feeder.
	for _, o := range fs {
		if o == f || o == best {
			continue
		}
		olm := o.models[r.dayOf(h)]
		if !olm.ok {
			continue
		}
		var exc, def float64
		n := 0
		for k := max(h-23, 0); k <= h; k++ {
			if o.complete[k] && best.complete[k] && o.m[k] > 0 && best.m[k] > 0 {
				exc += o.res(&olm, k)
				def -= best.res(&bestLM, k)
				n++
			}
		}
		if n >= 8 && exc > 0 && math.Abs(def-exc)/exc < bestErr && exc > 4*olm.sigma*math.Sqrt(float64(n)) {
			return nil, nil
		}
	}
	return best, &bestLM
}

func (r *run) openTopology(f, g *feederSeries, lm, glm *lossModel, hs []int, h int) {
	k := slices.Min(hs)
	for k > 0 {
		j := k - 1
		if !f.complete[j] || !g.complete[j] || f.res(lm, j) < 0.5*r.thr(f, lm, j) || -g.res(glm, j) < 0.5*r.thr(g, glm, j) {
			break
		}
		k--
	}
	head := r.meta[f.head]
	base := schemas.Alert{EntityType: schemas.EntityFeeder, FeederID: f.id, MeterID: r.g.ids[f.head], Oblast: head.Oblast,
		Evidence: map[string]any{"other_feeder_id": g.id, "other_head_meter_id": r.g.ids[g.head]}}
	ep := r.open(schemas.KindTopologyChange, f.id, "", h, r.g.t0+int64(k)*hourS, base)
	ep.loss, ep.related, ep.finish = *lm, g.id, finishTopology
	for j := k; j <= h; j++ {
		r.countTopology(ep, f, g, j)
	}
	r.step(ep, h, true)
}

func (r *run) countTopology(ep *episode, f, g *feederSeries, j int) {
	ep.cur.hours++
	if f.complete[j] {
		ep.cur.valid++
		ep.cur.obs += f.hd[j]
		ep.cur.exp += f.m[j] + ep.loss.loss(f.m[j])
		ep.cur.cap += f.m[j]
	}
}

// holdTopology keeps a switching finding while the pair still mirrors over
// the last day; one seen from the side that gives, while that side's head
// still measures less than its meters.
func (r *run) holdTopology(ep *episode, fs []*feederSeries, f *feederSeries, h int) {
	if ep.model == "gives" {
		r.countTopology(ep, f, nil, h)
		var def, thr float64
		for k := max(h-23, 0); k <= h; k++ {
			if f.complete[k] && f.m[k] > 0 {
				def -= f.res(&ep.loss, k)
				thr += r.thr(f, &ep.loss, k) - ep.loss.allow*f.m[k]
			}
		}
		r.step(ep, h, thr > 0 && def >= 0.5*thr)
		return
	}
	var g *feederSeries
	for _, x := range fs {
		if x.id == ep.related {
			g = x
		}
	}
	if g == nil {
		r.step(ep, h, false)
		return
	}
	r.countTopology(ep, f, g, h)
	glm := g.models[r.dayOf(h)]
	var exc, def, thr float64
	for k := max(h-23, 0); k <= h; k++ {
		if f.complete[k] && g.complete[k] && f.m[k] > 0 && g.m[k] > 0 {
			exc += f.res(&ep.loss, k)
			def -= g.res(&glm, k)
			thr += r.thr(f, &ep.loss, k)
		}
	}
	r.step(ep, h, thr > 0 && exc >= 0.5*thr && def >= 0.5*exc && def <= 2*exc)
}

func finishTopology(ep *episode, a *schemas.Alert, cfg *Config) {
	s := &ep.held
	sc := s.scale()
	obs, exp := s.obs*sc, s.exp*sc
	if ep.model == "gives" {
		moved := math.Max(0, exp-obs)
		a.ObservedKWh, a.ExpectedKWh, a.ExcessKWh = f64(round(obs, 1)), f64(round(exp, 1)), f64(0)
		a.Severity = schemas.SeverityInfo
		a.Score = 0
		if s.cap > 0 {
			a.Score = round(100*(s.exp-s.obs)/s.cap, 2)
		}
		ev := a.Evidence
		ev["moved_kwh"] = round(moved, 1)
		ev["hours"] = s.hours
		other := "a neighbouring feeder the data does not show"
		if ep.related != "" {
			other = "feeder " + ep.related
		}
		a.Summary = fmt.Sprintf("Feeder %s: since %s local time its head meter %s has measured about %s less than its meters and normal losses account for, which is impossible while they are all its own: a block of its customers is being served from %s (switching for maintenance or an outage) without a meter record, or its head meter is failing. Not theft; update the topology if it lasts.",
			a.FeederID, localTime(a.WindowStart, cfg.Location), a.MeterID, fmtKWh(moved), other)
		return
	}
	moved := math.Max(0, obs-exp)
	a.ObservedKWh, a.ExpectedKWh, a.ExcessKWh = f64(round(obs, 1)), f64(round(exp, 1)), f64(round(moved, 1))
	a.Severity = schemas.SeverityInfo
	share := 0.0
	if s.cap > 0 {
		share = (s.obs - s.exp) / s.cap
	}
	a.Score = round(100*share, 2)
	ev := a.Evidence
	ev["moved_kwh"] = round(moved, 1)
	ev["hours"] = s.hours
	ev["loss_model"] = ep.loss.source
	a.Summary = fmt.Sprintf("Feeders %s and %s: since %s local time the head meter of %s has measured about %s more than its meters and losses account for, and the head meter of %s about as much less: a block of customers is being served from %s (switching for maintenance or an outage) without a meter record. Not theft; update the topology if it lasts.",
		a.FeederID, ep.related, localTime(a.WindowStart, cfg.Location), a.FeederID, fmtKWh(moved), ep.related, a.FeederID)
}

func finishImbalance(ep *episode, a *schemas.Alert, cfg *Config) {
	s := &ep.held
	sc := s.scale()
	obs, exp := s.obs*sc, s.exp*sc
	excess := math.Max(0, obs-exp)
	setEnergy(cfg, a, obs, exp, excess)
	share := 0.0
	if s.cap > 0 {
		share = (s.obs - s.exp) / s.cap
	}
	a.Score = round(100*share, 2)
	a.Severity = schemas.SeverityWarning
	if share >= 0.1 || excess >= 50000 {
		a.Severity = schemas.SeverityCritical
	}
	lm := &ep.loss
	ev := a.Evidence
	ev["loss_model"] = lm.source
	ev["loss_model_c_kwh"] = round(lm.c, 4)
	ev["loss_model_a"] = round(lm.a, 6)
	ev["loss_model_b_per_kwh"] = lm.b
	ev["normal_loss_share"] = round(lm.share, 4)
	ev["fitted_loss_share"] = round(lm.fitShare, 4)
	ev["residual_sigma_kwh"] = round(lm.sigma, 3)
	ev["diverted_share"] = round(share, 4)
	ev["metered_kwh"] = round(s.cap*sc, 1)
	ev["normal_loss_kwh"] = round(exp-s.cap*sc, 1)
	ev["hours"] = s.hours
	ev["complete_hours"] = s.valid
	if ep.suspects != nil {
		ev["suspect_meters"] = ep.suspects
	}
	where := "Feeder " + a.FeederID
	if a.Oblast != "" {
		where += " (" + a.Oblast + ")"
	}
	losses := fmt.Sprintf("normal technical losses (%.1f%%, its own history)", 100*lm.share)
	switch lm.source {
	case "peers":
		losses = fmt.Sprintf("normal technical losses (%.1f%%, its peers' median: its own history gave %.1f%%, more than a feeder of its class loses)", 100*lm.share, 100*lm.fitShare)
	case "band":
		losses = fmt.Sprintf("normal technical losses (%.1f%%, typical of its class: its own history gave %.1f%%, more than a feeder of its class loses)", 100*lm.share, 100*lm.fitShare)
	}
	who := ""
	if len(ep.suspects) > 0 {
		n := min(3, len(ep.suspects))
		ids := make([]string, n)
		for i := range ids {
			ids[i] = ep.suspects[i].MeterID
		}
		who = fmt.Sprintf(" Meters most likely hiding it: %s.", joinIDs(ids))
	}
	a.Summary = fmt.Sprintf("%s: its head meter %s has measured %.1f%% more than its meters and %s account for since %s local time: about %s taken before any meter or hidden by under-reporting meters, worth %s.%s",
		where, a.MeterID, 100*share, losses, localTime(a.WindowStart, cfg.Location), fmtKWh(excess), fmtKZT(excess*cfg.TariffKZTPerKWh), who)
}

func joinIDs(ids []string) string {
	out := ""
	for i, id := range ids {
		if i > 0 {
			out += ", "
		}
		out += id
	}
	return out
}
