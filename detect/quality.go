package detect

import (
	"fmt"
	"math"

	"github.com/rigwatch/rigwatch/schemas"
)

// quality raises data_quality on meters stuck at one reading: the same
// non-zero hourly energy for StuckHours or more in a row, from a meter
// whose load otherwise moves at its resolution (in the two days before the
// run, at least half its hour-to-hour changes were non-zero): a stuck
// register or a communication fault that repeats the last value, not a
// real load. A steady load metered so coarsely that it often repeats
// (whole kWh an hour, say) is not stuck. Stuck hours are left out of the
// theft rules; the finding is information for the metering team, not
// theft.
func (r *run) quality() error {
	g := r.g
	n := r.cfg.StuckHours
	for mi32 := range g.ids {
		mi := int32(mi32)
		if !r.known[mi] {
			continue
		}
		id := g.ids[mi]
		for h := r.hFirst; h <= r.hLast; h++ {
			// the run of one repeated reading ending at h, if it has
			// lasted StuckHours
			in := h-g.runStart(mi, h, n)+1 >= n
			ep := r.episode(schemas.KindDataQuality, id, "")
			if ep != nil {
				ep.cur.hours++
				r.step(ep, h, in)
				continue
			}
			if !in {
				continue
			}
			from := g.runStart(mi, h, 0)
			if !r.moves(mi, from) || r.repeats(mi, from, h+1) {
				continue
			}
			a := r.meterAlert(mi)
			a.Evidence = map[string]any{"rule": "stuck_reading", "kwh_per_hour": round(float64(g.eRow(mi)[from]), 4),
				"class": r.meta[mi].Class, "role": r.meta[mi].Role}
			ep = r.open(schemas.KindDataQuality, id, "", h, g.t0+int64(from)*hourS, a)
			ep.level = float64(g.eRow(mi)[from])
			ep.finish = finishQuality
			ep.cur.hours = h - from + 1
			r.step(ep, h, true)
		}
	}
	return nil
}

// moves reports whether meter mi's load moved at its resolution in the two
// days before grid hour h (at least half its hour-to-hour changes non-zero)
// and whether the value repeated from h on is a load it could have shown
// moving: at least 100 times the smallest change it showed, and a quarter
// of its median hourly energy. A household's few watt-hours a night at
// one-watt-hour resolution repeat without anything being stuck.
func (r *run) moves(mi int32, h int) bool {
	g := r.g
	var n, moved int
	step := math.Inf(1)
	var vals []float64
	for k := max(h-48, 1); k < h; k++ {
		if g.full(mi, k) && g.full(mi, k-1) {
			n++
			// Changes below half a watt-hour are the rounding of sums,
			// not the meter's.
			if d := math.Abs(float64(g.eRow(mi)[k] - g.eRow(mi)[k-1])); d > 5e-4 {
				moved++
				step = math.Min(step, d)
			}
			vals = append(vals, float64(g.eRow(mi)[k]))
		}
	}
	if n < 12 || 2*moved < n {
		return false
	}
	v := float64(g.eRow(mi)[h])
	return v >= 100*step && v >= 0.25*medianOf(vals)
}

// repeats reports whether meter mi often repeated a reading from one hour
// to the next at the hours of day of the run [from, to) over the lookback
// before it (in more than 5% of them): a household's standby at night, read
// to the watt-hour, repeats without anything being stuck.
func (r *run) repeats(mi int32, from, to int) bool {
	g := r.g
	var hods [24]bool
	for k := from + 1; k < to && k < from+25; k++ {
		hods[r.hod(k)] = true
	}
	earlier := map[int]bool{} // hours of earlier stuck runs
	for _, run := range r.stuckRuns(mi, r.cfg.StuckHours) {
		for k := run[0]; k < run[1] && run[1] <= from; k++ {
			earlier[k] = true
		}
	}
	var n, same int
	for k := max(from-r.lookH, 1); k < from; k++ {
		if hods[r.hod(k)] && !earlier[k] && g.full(mi, k) && g.full(mi, k-1) && g.eRow(mi)[k] > 0 {
			n++
			if g.eRow(mi)[k] == g.eRow(mi)[k-1] {
				same++
			}
		}
	}
	return n < 24 || 20*same > n
}

func finishQuality(ep *episode, a *schemas.Alert, cfg *Config) {
	a.Severity = schemas.SeverityInfo
	a.Score = float64(ep.held.hours)
	a.Evidence["hours"] = ep.held.hours
	a.Summary = fmt.Sprintf("Meter %s on feeder %s has reported the same reading (%s kWh an hour) for %d hours since %s local time: a stuck meter or a communication fault, not a real load. Its readings there are left out of the theft rules; check the meter.",
		a.MeterID, a.FeederID, fmtNum(ep.level), ep.held.hours, localTime(a.WindowStart, cfg.Location))
}

func fmtNum(v float64) string {
	if math.Abs(v) >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
