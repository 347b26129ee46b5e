package detect

import (
	"fmt"
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/rigwatch/rigwatch/schemas"
)

// feederSeries is a feeder's hourly energy balance: what its head meter
// measured and what its other meters together measured, over the hours in
// which every one of them reported the whole hour.
type feederSeries struct {
	id       string
	head     int32
	members  int
	m, hd    []float64
	complete []bool
}

// lossModel is a feeder's technical losses as a function of the metered
// load: loss = a*M + b*M^2 (kWh in an hour of M kWh), fitted by least
// squares on the feeder's own complete hours.
type lossModel struct {
	a, b      float64
	sigma     float64 // robust spread of the hourly residual, kWh
	n         int
	share     float64 // losses / metered energy over the fit
	plausible bool
}

func (l lossModel) loss(m float64) float64 { return l.a*m + l.b*m*m }

func (r *run) feeders() []*feederSeries {
	g := r.g
	var out []*feederSeries
	for mi := range g.ids {
		m := r.meta[mi]
		if !r.known[mi] || m.Role != schemas.RoleFeederHead || m.FeederID == "" {
			continue
		}
		f := &feederSeries{id: m.FeederID, head: int32(mi), m: make([]float64, g.n), hd: make([]float64, g.n), complete: make([]bool, g.n)}
		var members []int32
		day := -1
		for h := 0; h < g.n; h++ {
			// membership at the start and end of each local day; hour by
			// hour on the days it changes
			if ds := r.dayOf(h); ds != day {
				day = ds
				var k1, k2 string
				members, k1 = r.members(f.id, g.hourTime(ds).Add(time.Second))
				_, k2 = r.members(f.id, g.hourTime(ds+24).Add(-time.Second))
				if k1 != k2 {
					members = nil
				}
			}
			ms := members
			if ms == nil {
				ms, _ = r.members(f.id, g.hourTime(h).Add(30*time.Minute))
			}
			f.members = max(f.members, len(ms))
			ok := g.full(f.head, h)
			var sum float64
			for _, x := range ms {
				if x < 0 || !g.full(x, h) {
					ok = false
					break
				}
				sum += float64(g.e[x][h])
			}
			f.complete[h] = ok
			if ok {
				f.m[h], f.hd[h] = sum, float64(g.e[f.head][h])
			}
		}
		out = append(out, f)
	}
	return out
}

// members returns the grid indexes of the meters on a feeder at t, other
// than its head, and a key naming the set. A meter with no reading at all
// in the grid is left out: it has no data to balance.
func (r *run) members(feeder string, t time.Time) ([]int32, string) {
	ms := r.e.reg.FeederMeters(feeder, t)
	out := make([]int32, 0, len(ms))
	key := ""
	for _, m := range ms {
		if m.Role == schemas.RoleFeederHead {
			continue
		}
		key += m.MeterID + ","
		if i, ok := r.g.idx[m.MeterID]; ok {
			out = append(out, i)
		}
	}
	return out, key
}

// fit fits the loss model on the complete hours in [from, to).
func (r *run) fit(f *feederSeries, from, to int) lossModel {
	var xs, ys []float64
	for h := max(from, 0); h < to; h++ {
		if f.complete[h] && f.m[h] > 0 {
			xs = append(xs, f.m[h])
			ys = append(ys, f.hd[h]-f.m[h])
		}
	}
	lm := lossModel{n: len(xs)}
	if len(xs) < r.cfg.MinFitHours {
		return lm
	}
	var ms float64
	for _, x := range xs {
		ms += x
	}
	ms /= float64(len(xs))
	X := mat.NewDense(len(xs), 2, nil)
	for i, x := range xs {
		u := x / ms
		X.Set(i, 0, u)
		X.Set(i, 1, u*u)
	}
	var c mat.VecDense
	if err := c.SolveVec(X, mat.NewVecDense(len(ys), ys)); err != nil {
		return lm
	}
	lm.a, lm.b = c.AtVec(0)/ms, c.AtVec(1)/(ms*ms)
	res := make([]float64, len(xs))
	var loss, metered float64
	for i, x := range xs {
		res[i] = ys[i] - lm.loss(x)
		loss += lm.loss(x)
		metered += x
	}
	med := medianOf(res)
	for i := range res {
		res[i] = math.Abs(res[i] - med)
	}
	lm.sigma = 1.4826 * medianOf(res)
	lm.share = loss / metered
	lm.plausible = lm.share >= -0.005 && lm.share <= r.cfg.MaxTechLoss && lm.a > -0.05
	return lm
}

// imbalance raises feeder_imbalance when a feeder's head meter measures
// more than its meters and their technical losses explain, for
// ImbalanceHours complete hours: each hour's residual above both
// ImbalanceFraction of the metered energy and four robust standard
// deviations of the feeder's own residual. The loss model is fitted on the
// lookback before each local day; a feeder whose fit is not physically
// plausible (losses above MaxTechLoss: the diversion predates the data) is
// judged against MaxTechLoss itself, and its diverted energy against the
// median loss share of its peers. The onset is walked back to the first hour
// of the run of high residuals; the diverted energy is the sum of residuals
// since, scaled up for hours with missing readings.
func (r *run) imbalance() error {
	fs := r.feeders()
	models := make([]map[int]lossModel, len(fs))
	peer := map[int]float64{}
	shares := map[int][]float64{}
	for i, f := range fs {
		models[i] = map[int]lossModel{}
		for h := r.hFirst; h <= r.hLast; h++ {
			ds := r.dayOf(h)
			if _, ok := models[i][ds]; !ok {
				lm := r.fit(f, ds-r.lookH, ds)
				models[i][ds] = lm
				if lm.plausible {
					shares[ds] = append(shares[ds], lm.share)
				}
			}
		}
	}
	for ds, v := range shares {
		peer[ds] = medianOf(v)
	}
	K := r.cfg.ImbalanceHours
	for i, f := range fs {
		for h := r.hFirst; h <= r.hLast; h++ {
			ep := r.episode(schemas.KindFeederImbalance, f.id, "")
			if ep != nil {
				lm := lossModel{a: ep.la, b: ep.lb}
				ep.cur.hours++
				if f.complete[h] {
					ep.cur.valid++
					ep.cur.obs += f.hd[h]
					ep.cur.exp += f.m[h] + lm.loss(f.m[h])
					ep.cur.cap += f.m[h]
				}
				var res, met float64
				for k := max(h-23, 0); k <= h; k++ {
					if f.complete[k] {
						res += f.hd[k] - f.m[k] - lm.loss(f.m[k])
						met += f.m[k]
					}
				}
				r.step(ep, h, met > 0 && res >= 0.5*r.cfg.ImbalanceFraction*met)
				continue
			}
			if !f.complete[h] {
				continue
			}
			ds := r.dayOf(h)
			lm := models[i][ds]
			var hs []int
			for k := h; k > h-2*K && k >= 0 && len(hs) < K; k-- {
				if f.complete[k] && f.m[k] > 0 {
					hs = append(hs, k)
				}
			}
			if len(hs) < K {
				continue
			}
			rule := "loss_model"
			if !lm.plausible {
				rule = "max_tech_loss"
				share := r.cfg.MaxTechLoss
				if lm.n >= r.cfg.MinFitHours && lm.share > share {
					share = lm.share // the fit itself says the feeder leaks more
				}
				_ = share
			}
			ok := true
			var level float64
			for _, k := range hs {
				g := f.hd[k] - f.m[k]
				if rule == "loss_model" {
					res := g - lm.loss(f.m[k])
					ok = ok && res >= math.Max(r.cfg.ImbalanceFraction*f.m[k], 4*lm.sigma)
					level += res / f.m[k]
				} else {
					ok = ok && g >= r.cfg.MaxTechLoss*f.m[k]
				}
			}
			if !ok {
				continue
			}
			if rule != "loss_model" {
				share := 0.05
				if peer[ds] > 0 {
					share = peer[ds]
				}
				lm = lossModel{a: share, n: lm.n}
				level = 0
				for _, k := range hs {
					level += (f.hd[k] - f.m[k] - lm.loss(f.m[k])) / f.m[k]
				}
			}
			level /= float64(len(hs))
			cut := level / 2
			k := slices.Min(hs)
			for k > 0 {
				j := k - 1
				if f.complete[j] && f.m[j] > 0 && f.hd[j]-f.m[j]-lm.loss(f.m[j]) < cut*f.m[j] {
					break
				}
				k--
			}
			for k < h && !f.complete[k] {
				k++
			}
			head := r.meta[f.head]
			base := schemas.Alert{EntityType: schemas.EntityFeeder, FeederID: f.id, MeterID: r.g.ids[f.head], Oblast: head.Oblast,
				Evidence: map[string]any{"meters": f.members, "rule": rule}}
			ep = r.open(schemas.KindFeederImbalance, f.id, "", h, r.g.t0+int64(k)*hourS, base)
			ep.la, ep.lb, ep.level, ep.cut, ep.model = lm.a, lm.b, level, cut, rule
			ep.ref = lm.sigma
			ep.finish = finishImbalance
			for j := k; j <= h; j++ {
				ep.cur.hours++
				if f.complete[j] {
					ep.cur.valid++
					ep.cur.obs += f.hd[j]
					ep.cur.exp += f.m[j] + lm.loss(f.m[j])
					ep.cur.cap += f.m[j]
				}
			}
			r.step(ep, h, true)
		}
	}
	return nil
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
	ev := a.Evidence
	ev["loss_model_a"] = round(ep.la, 6)
	ev["loss_model_b_per_kwh"] = ep.lb
	ev["residual_sigma_kwh"] = round(ep.ref, 3)
	ev["diverted_share"] = round(share, 4)
	ev["metered_kwh"] = round(s.cap*sc, 1)
	ev["hours"] = s.hours
	ev["complete_hours"] = s.valid
	where := "Feeder " + a.FeederID
	if a.Oblast != "" {
		where += " (" + a.Oblast + ")"
	}
	a.Summary = fmt.Sprintf("%s: its head meter %s has measured %.1f%% more than its meters and normal technical losses account for since %s local time: about %s taken before any meter, worth %s.",
		where, a.MeterID, 100*share, localTime(a.WindowStart, cfg.Location), fmtKWh(excess), fmtKZT(excess*cfg.TariffKZTPerKWh))
}
