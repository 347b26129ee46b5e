package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// officeSim is a commercial building of PresetOffices: an office block, a
// shopping centre or a college, metered hourly for a year. Its year is what
// a utility sees from buildings with no mining at all: business hours, a
// weekend and public holidays at a lower level, whole weeks closed or quiet,
// Monday mornings that catch up, seasons, steady plant that runs round the
// clock, and meters that get stuck.
type officeSim struct {
	class       string  // the label in the meter record: buildings are not always labelled commercial
	peak        float64 // kW at full activity, plant excluded
	base        float64 // share of peak when idle (night, closed day)
	open, close float64 // local hours
	sat, sun    float64 // weekend activity, a share of a weekday's
	plant       float64 // kW of steady plant round the clock (server room, chillers)
	closed      []dayRange
	quiet       []dayRange
	quietLevel  float64
	stuck       []stepRange // the meter reports a frozen value
}

// dayRange is [from, to) in absolute local days (tick.dayAbs).
type dayRange struct{ from, to int64 }

// stepRange is [from, to) in base intervals.
type stepRange struct{ from, to int }

func inDays(rs []dayRange, d int64) bool {
	for _, r := range rs {
		if d >= r.from && d < r.to {
			return true
		}
	}
	return false
}

// localDate returns the local calendar date of absolute local day d.
func localDate(d int64) time.Time { return time.Date(1970, 1, 5+int(d), 0, 0, 0, 0, time.UTC) }

// absDay returns the absolute local day of a local calendar date.
func absDay(y int, m time.Month, d int) int64 {
	return int64(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(time.Date(1970, 1, 5, 0, 0, 0, 0, time.UTC)).Hours() / 24)
}

// kzHolidays are Kazakhstan's public holidays on fixed dates.
var kzHolidays = [][2]int{{1, 1}, {1, 2}, {1, 7}, {3, 8}, {3, 21}, {3, 22}, {3, 23}, {5, 1}, {5, 7}, {5, 9}, {7, 6}, {8, 30}, {10, 25}, {12, 16}}

// kurbanAit is the Feast of Sacrifice, a public holiday that moves.
var kurbanAit = map[int][2]int{2024: {6, 16}, 2025: {6, 6}, 2026: {5, 27}, 2027: {5, 16}}

// holiday reports whether absolute local day d is a day off by law: a
// public holiday, or the Monday after one that fell on a weekend.
func holiday(d int64) bool {
	is := func(d int64) bool {
		t := localDate(d)
		md := [2]int{int(t.Month()), t.Day()}
		for _, h := range kzHolidays {
			if h == md {
				return true
			}
		}
		return kurbanAit[t.Year()] == md
	}
	if is(d) {
		return true
	}
	wd := d % 7 // Monday = 0
	return wd == 0 && (is(d-1) || is(d-2))
}

// officeDay classifies a day of an office: 0 work, 1 quiet work, 2
// Saturday, 3 Sunday or holiday, 4 closed.
func (o *officeSim) day(d int64) int {
	switch {
	case inDays(o.closed, d):
		return 4
	case holiday(d) || d%7 == 6:
		return 3
	case d%7 == 5:
		return 2
	case inDays(o.quiet, d):
		return 1
	}
	return 0
}

// officeKW is an office's mean kW over interval k.
func (s *Scenario) officeKW(mi int, m *meterSim, k *tick) float64 {
	o := &s.offices[m.office]
	typ := o.day(k.dayAbs)
	h := k.hour
	act := 0.0
	switch {
	case h < o.open-1 || h >= o.close+1:
	case h < o.open:
		act = h - o.open + 1
	case h >= o.close:
		act = o.close + 1 - h
	case h >= 13 && h < 14:
		act = 0.9
	default:
		act = 1
	}
	base := o.base
	switch typ {
	case 1:
		act *= o.quietLevel
	case 2:
		act *= o.sat
	case 3:
		act *= o.sun
	case 4:
		act, base = 0, base*0.8 // heating and ventilation set back
	}
	// Monday return: the first working day after two or more days off
	// catches up on heating or cooling before opening.
	if typ <= 1 && o.day(k.dayAbs-1) >= 2 && o.day(k.dayAbs-2) >= 2 && h >= o.open-2 && h < o.open+1 {
		act += 0.2
	}
	doy := float64(localDate(k.dayAbs).YearDay())
	season := 1 + 0.18*math.Cos(2*math.Pi*(doy-15)/365.25) + 0.12*math.Max(0, math.Cos(2*math.Pi*(doy-200)/365.25))
	weather := 1 + 0.06*s.sym(tagWeather, uint64(mi), uint64(k.dayAbs))
	kw := o.peak * (base + (1-base)*act) * season * weather
	kw += o.plant * (1 + 0.02*s.sym(tagOffice, uint64(mi), uint64(k.t)))
	return kw * (1 + 0.04*s.sym(tagNoise, uint64(mi), uint64(k.t)))
}

// officesGrid builds PresetOffices: feeders of buildings without a head
// meter (the held-out sets of this kind come without one).
func (b *builder) officesGrid() {
	s, cfg := b.s, b.s.cfg
	first, last := s.tickAt(0).dayAbs, s.tickAt(s.steps-1).dayAbs
	for fi := range cfg.Feeders {
		f := feederSim{id: fmt.Sprintf("FDR-%05d", fi+1), oblast: oblasts[b.pickWeighted(oblastPop)], class: schemas.ClassCommercial,
			typ: feederCommercial, div: -1, noHead: true}
		f.head = len(s.meters)
		s.meters = append(s.meters, meterSim{kind: kindHead, feeder: int32(fi), site: -1, extra: -1, attack: -1, office: -1})
		for range cfg.MetersPerFeeder {
			m := b.newMeter(fi, kindOffice)
			m.office = int32(len(s.offices))
			s.offices = append(s.offices, b.newOffice(first, last))
			s.meters = append(s.meters, m)
		}
		f.end = len(s.meters)
		s.feeders = append(s.feeders, f)
	}
}

func (b *builder) newOffice(first, last int64) officeSim {
	o := officeSim{
		class:      schemas.ClassCommercial,
		peak:       math.Min(900, math.Max(40, math.Exp(math.Log(150)+0.7*b.rng.NormFloat64()))),
		base:       b.uniform(0.22, 0.5),
		open:       7 + float64(b.rng.IntN(5))/2,
		close:      17 + float64(b.rng.IntN(7))/2,
		quietLevel: b.uniform(0.4, 0.75),
	}
	switch u := b.rng.Float64(); {
	case u < 0.25:
		o.class = schemas.ClassIndustrial
	case u < 0.35:
		o.class = schemas.ClassResidential
	}
	if b.rng.Float64() < 0.6 {
		o.sat = b.uniform(0.15, 0.6)
	}
	if b.rng.Float64() < 0.3 {
		o.sun = b.uniform(0.1, 0.3)
	}
	if b.rng.Float64() < 0.35 {
		o.plant = o.peak * b.uniform(0.05, 0.25)
	}
	span := last - first + 1
	week := func(lo, hi int) dayRange {
		from := first + int64(b.rng.IntN(int(max(1, span-14))))
		from -= from % 7 // closures and quiet weeks start on a Monday
		return dayRange{from, from + int64(7*(lo+b.rng.IntN(hi-lo+1)))}
	}
	// The New Year break: many buildings close between the holidays.
	for y := localDate(first).Year(); y <= localDate(last).Year()+1; y++ {
		if b.rng.Float64() < 0.5 {
			o.closed = append(o.closed, dayRange{absDay(y-1, 12, 29), absDay(y, 1, 9)})
		}
	}
	if b.rng.Float64() < 0.35 && span > 60 {
		o.closed = append(o.closed, week(1, 3))
	}
	for range b.rng.IntN(3) + 1 {
		if span > 30 {
			o.quiet = append(o.quiet, week(1, 2))
		}
	}
	return o
}

// stuckFaults plants meters that get stuck: for hours to days a meter
// repeats its last reading while the building goes on using power.
func (b *builder) stuckFaults() {
	s := b.s
	for mi := range s.meters {
		m := &s.meters[mi]
		if m.kind != kindOffice || b.rng.Float64() >= 0.4 {
			continue
		}
		o := &s.offices[m.office]
		for range 1 + b.rng.IntN(2) {
			n := int(b.uniform(8, 240) * 3600 / float64(s.ivS))
			from := 1 + b.rng.IntN(max(1, s.steps-n-1))
			to := min(s.steps, from+n)
			o.stuck = append(o.stuck, stepRange{from, to})
			f := &s.feeders[m.feeder]
			s.truth = append(s.truth, Truth{Kind: schemas.KindDataQuality, EntityType: schemas.EntityMeter,
				MeterID: fmt.Sprintf("#%d", mi), FeederID: f.id, Oblast: f.oblast, Start: s.stepTime(from), End: s.stepTime(to),
				Pattern: "stuck_meter", Detail: fmt.Sprintf("the meter repeats one reading for %.0f hours", float64((to-from)*s.ivS)/3600)})
		}
	}
}

// officeReported returns what an office meter reports for interval k whose
// true energy is v: the last reading before a stuck period, repeated.
func (s *Scenario) officeReported(mi int, m *meterSim, k *tick, v float64) float64 {
	for _, r := range s.offices[m.office].stuck {
		if k.t >= r.from && k.t < r.to {
			p := s.tickAt(r.from - 1)
			return s.meterKWh(mi, &p)
		}
	}
	return v
}
