package sim

import (
	"math"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// mix is the splitmix64 finaliser: per-step noise comes from hashing
// (seed, tag, entity, time) rather than from a sequential generator, so any
// step can be computed on its own.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Hash tags keep the noise streams of different uses apart.
const (
	tagSplit uint64 = iota + 1
	tagNoise
	tagGapBlock
	tagGapStart
	tagGapOne
	tagDup
	tagCorr
	tagCorrVal
	tagUtil
	tagCurtail
	tagCurtailLen
	tagOutage
	tagLoss
	tagDiv
	tagDayVar
	tagAttack
	tagAttackDay
	tagOffice
	tagWeather
)

func (s *Scenario) hash(tag, a, b uint64) uint64 {
	return mix(mix(mix(s.seedHash^tag*0x9E3779B97F4A7C15)^a) ^ b*0xC2B2AE3D27D4EB4F)
}

// unit returns a uniform number in [0, 1).
func (s *Scenario) unit(tag, a, b uint64) float64 {
	return float64(s.hash(tag, a, b)>>11) * 0x1p-53
}

// sym returns a uniform number in [-1, 1).
func (s *Scenario) sym(tag, a, b uint64) float64 { return 2*s.unit(tag, a, b) - 1 }

// tick describes one base metering interval in local time.
type tick struct {
	t       int     // base interval index from Start
	unixEnd int64   // interval end, Unix seconds
	dayAbs  int64   // local days since 1970-01-05, a Monday
	day     int     // local days since Start's local date
	weekday int     // Monday = 0
	minute  int     // local minute of day at the interval start
	hour    float64 // local hour of day at the interval midpoint
	halfAbs int64   // absolute local half-hour index
	part    int     // index of this interval inside its half hour
	hours   float64 // interval length in hours
}

const mondayEpoch = 4 * 86400 // 1970-01-05T00:00 local

// localOffset is schemas.Local's offset from UTC in seconds: a fixed zone,
// so local days and hours come from Unix seconds without time.Time.
var localOffset = func() int64 {
	_, off := time.Unix(0, 0).In(schemas.Local).Zone()
	return int64(off)
}()

func (s *Scenario) tickAt(t int) tick {
	startUnix := s.startUnix + int64(t)*int64(s.ivS)
	local := startUnix + localOffset - mondayEpoch
	k := tick{t: t, unixEnd: startUnix + int64(s.ivS), hours: float64(s.ivS) / 3600}
	k.dayAbs = floorDiv(local, 86400)
	k.day = int(k.dayAbs - s.startDayAbs)
	k.weekday = int(k.dayAbs % 7)
	sec := int(local - k.dayAbs*86400)
	k.minute = sec / 60
	k.hour = (float64(sec) + float64(s.ivS)/2) / 3600
	k.halfAbs = floorDiv(local, 1800)
	k.part = (sec % 1800) / s.ivS
	return k
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Meter kinds: the load model behind a meter.
type meterKind uint8

const (
	kindHead meterKind = iota
	kindResidential
	kindCommercial  // shops and offices: business hours, weekday pattern
	kindColdStore   // commercial but round the clock: refrigeration cycling
	kindHospital    // social, legitimately flat round the clock
	kindSchool      // social, daytime on school days
	kindIndustry24  // three shifts: high and flat, the trap for naive detectors
	kindIndustryDay // two shifts on weekdays
	kindSite        // registered mining site
	kindSteady      // commercial, steady plant round the clock: pumps, ventilation, ovens
	kindOffice      // commercial building of PresetOffices: holidays, closures, stuck meters
)

// meterSim holds what a meter's load model needs.
type meterSim struct {
	id     string
	feeder int32
	kind   meterKind
	site   int32 // kindSite: index into sites
	extra  int32 // index into extras (unregistered mining), or -1
	attack int32 // index into attacks (false data injection), or -1
	office int32 // kindOffice: index into offices
	hh     int32 // residential: household index
	dayOff int32 // residential: day offset into the series, a multiple of 7
	scale  float64
	base   float64 // share of peak when closed or at night
	open   float64 // local opening hour
	close  float64 // local closing hour
	sat    float64 // Saturday level
	sun    float64 // Sunday level
	gapMul float64 // how outage-prone the meter's communications are
}

// meterKWh returns the energy the meter truly used in base interval k: the
// load model, plus any hidden mining behind it.
func (s *Scenario) meterKWh(mi int, k *tick) float64 {
	m := &s.meters[mi]
	var kw float64
	switch m.kind {
	case kindResidential:
		return s.residentialKWh(mi, m, k) + s.extraKWh(m, k)
	case kindCommercial:
		kw = m.scale * s.businessLevel(m, k) * (1 + 0.08*s.sym(tagNoise, uint64(mi), uint64(k.t)))
	case kindColdStore:
		cyc := 0.5 + 0.5*math.Sin(float64(k.t)*1.7+float64(mi))
		kw = m.scale * (0.55 + 0.12*math.Sin((k.hour-9)*math.Pi/12) + 0.18*cyc*s.unit(tagNoise, uint64(mi), uint64(k.t)))
	case kindHospital:
		day := 0.0
		if k.hour >= 8 && k.hour < 18 {
			day = 0.1
		}
		kw = m.scale * (0.86 + day + 0.03*s.sym(tagNoise, uint64(mi), uint64(k.t)))
	case kindSchool:
		lvl := m.base
		switch {
		case k.weekday < 5 && k.hour >= m.open && k.hour < m.close:
			lvl = 1
		case k.weekday == 5 && k.hour >= m.open && k.hour < 13:
			lvl = 0.5
		}
		kw = m.scale * lvl * (1 + 0.1*s.sym(tagNoise, uint64(mi), uint64(k.t)))
	case kindIndustry24:
		lvl := 0.93
		if h := math.Mod(k.hour, 8); h < 0.5 { // shift change
			lvl = 0.84
		}
		lvl *= 1 + 0.04*s.sym(tagDayVar, uint64(mi), uint64(k.dayAbs))
		kw = m.scale * lvl * (1 + 0.035*s.sym(tagNoise, uint64(mi), uint64(k.t)))
	case kindIndustryDay:
		lvl := m.base
		switch {
		case k.weekday < 5 && k.hour >= 6 && k.hour < 22:
			lvl = 1
		case k.weekday == 5 && k.hour >= 6 && k.hour < 14:
			lvl = 0.9
		}
		kw = m.scale * lvl * (1 + 0.05*s.sym(tagNoise, uint64(mi), uint64(k.t)))
	case kindSite:
		total, _ := s.siteKW(int(m.site), k)
		return total * k.hours
	case kindSteady:
		// A steady process with a thermostat's or a controller's wobble, and
		// a little more while people work.
		lvl := 1.0
		if k.weekday < 6 && k.hour >= 8 && k.hour < 19 {
			lvl += m.base
		}
		kw = m.scale * lvl * (1 + m.sat*s.sym(tagNoise, uint64(mi), uint64(k.t)))
	case kindOffice:
		kw = s.officeKW(mi, m, k)
	}
	return kw*k.hours + s.extraKWh(m, k)
}

// businessLevel is a shop's or office's share of peak load.
func (s *Scenario) businessLevel(m *meterSim, k *tick) float64 {
	open := 1.0
	switch k.weekday {
	case 5:
		open = m.sat
	case 6:
		open = m.sun
	}
	h := k.hour
	switch {
	case h < m.open-1 || h >= m.close+1:
		return m.base
	case h < m.open: // opening ramp
		return m.base + (open-m.base)*math.Max(0, h-m.open+1)
	case h >= m.close:
		return m.base + (open-m.base)*math.Max(0, m.close+1-h)
	}
	if h >= 13 && h < 14 {
		return math.Max(m.base, 0.9*open)
	}
	return math.Max(m.base, open)
}

// residentialKWh is a real household's half-hour use, scaled, shifted to the
// scenario with weekdays kept, and split across the sub-intervals of the half
// hour with noise that keeps the half-hour total.
func (s *Scenario) residentialKWh(mi int, m *meterSim, k *tick) float64 {
	days := int64(s.hh.days)
	if s.ivS > 1800 { // an interval of whole half hours: their sum
		var v float64
		for half := k.halfAbs; half < k.halfAbs+int64(s.ivS/1800); half++ {
			d := (floorDiv(half, 48) + int64(m.dayOff)) % days
			v += float64(s.hh.wh[m.hh][d*48+half%48]) / 1000 * m.scale
		}
		return v
	}
	d := (k.dayAbs + int64(m.dayOff)) % days
	slot := k.minute / 30
	v := float64(s.hh.wh[m.hh][d*48+int64(slot)]) / 1000 * m.scale
	parts := 1800 / s.ivS
	if parts <= 1 {
		return v
	}
	var w [6]float64
	var sum float64
	for i := 0; i < parts; i++ {
		w[i] = 1 + 0.3*s.sym(tagSplit, uint64(mi), uint64(k.halfAbs)*8+uint64(i))
		sum += w[i]
	}
	return v * w[k.part] / sum
}

// extra is unregistered mining hidden behind a customer meter.
type extra struct {
	meter   int
	onset   int // base interval index
	kw      float64
	pattern string
}

const (
	patternRoundClock   = "round_the_clock"
	patternNight        = "night_only"
	patternEveningPause = "evening_peak_pause"
)

func (s *Scenario) extraKWh(m *meterSim, k *tick) float64 {
	if m.extra < 0 {
		return 0
	}
	e := &s.extras[m.extra]
	if k.t < e.onset {
		return 0
	}
	switch e.pattern {
	case patternNight:
		if k.hour >= 7 && k.hour < 22 {
			return 0
		}
	case patternEveningPause:
		if k.hour >= 18 && k.hour < 22 {
			return 0
		}
	}
	return e.kw * (1 + 0.015*s.sym(tagNoise, uint64(e.meter)+1<<40, uint64(k.t))) * k.hours
}

// kwStep is a change of a piecewise constant power schedule.
type kwStep struct {
	t  int
	kw float64
}

func scheduleAt(sched []kwStep, t int) float64 {
	for i := len(sched) - 1; i >= 0; i-- {
		if sched[i].t <= t {
			return sched[i].kw
		}
	}
	return 0
}

// siteSim is a registered mining site's load model.
type siteSim struct {
	id       string
	meter    int
	feeder   int
	operator int
	cool     float64 // cooling and losses on top of the rigs
	utilLo   float64
	curtailP float64
	actual   []kwStep // rated kW of the rigs really running, by base interval
	hidden   []kwStep // rated kW of unregistered rigs at the site
	reg      []kwStep // registered active capacity, kW (declared powers)
}

// siteKW returns the site's mean draw over interval k and the part of it that
// hidden rigs draw.
func (s *Scenario) siteKW(si int, k *tick) (total, hidden float64) {
	st := &s.sites[si]
	act, hid := scheduleAt(st.actual, k.t), scheduleAt(st.hidden, k.t)
	if act+hid == 0 {
		return 0, 0
	}
	f := st.cool * (st.utilLo + (1-st.utilLo)*s.unit(tagUtil, uint64(si), uint64(k.dayAbs)))
	f *= 1 + 0.008*s.sym(tagNoise, uint64(si)+1<<41, uint64(k.t))
	// Curtailment: on some days the site drops load for part of the evening peak.
	if u := s.unit(tagCurtail, uint64(si), uint64(k.dayAbs)); u < st.curtailP {
		from := 18 + float64(int(u*1000)%2)
		n := 2 + float64(s.hash(tagCurtailLen, uint64(si), uint64(k.dayAbs))%3)
		if k.hour >= from && k.hour < from+n {
			f *= 0.2 + 0.4*u/st.curtailP
		}
	}
	// Rare outages: a few hours at a few per cent of load.
	if u := s.unit(tagOutage, uint64(si), uint64(k.dayAbs)); u < 0.02 {
		from := float64(int(u*1e6) % 20)
		if k.hour >= from && k.hour < from+1+float64(int(u*1e4)%4) {
			f *= 0.05
		}
	}
	return (act + hid) * f, hid * f
}

// diversion is load taken before any meter on a feeder.
type diversion struct {
	feeder  int
	onset   int
	frac    float64
	meanKW  float64
	pattern string
}

const (
	patternProportional = "proportional_to_load"
	patternFlat         = "flat"
)

// feederTick returns the feeder-head energy for interval k given the metered
// energy of the feeder's meters, and its parts: technical losses and diverted
// energy (including the extra losses the diversion causes).
func (s *Scenario) feederTick(fi int, k *tick, meteredKWh float64) (head, loss, stolen float64) {
	f := &s.feeders[fi]
	p := meteredKWh / k.hours
	var d float64
	if f.div >= 0 {
		dv := &s.divs[f.div]
		if k.t >= dv.onset {
			switch dv.pattern {
			case patternProportional:
				d = dv.frac * p * (1 + 0.03*s.sym(tagDiv, uint64(fi), uint64(k.t)))
			case patternFlat:
				d = dv.frac * dv.meanKW * (1 + 0.02*s.sym(tagDiv, uint64(fi), uint64(k.t)))
			case patternNight:
				lvl := 0.2
				if k.hour >= 21 || k.hour < 7 {
					lvl = 2
				}
				d = dv.frac * dv.meanKW * lvl * (1 + 0.03*s.sym(tagDiv, uint64(fi), uint64(k.t)))
			}
		}
	}
	nf := 1 + 0.08*s.sym(tagLoss, uint64(fi), uint64(k.t))
	lossP := nf * (f.lossC + f.lossA*p + f.lossB*p*p)
	lossPD := nf * (f.lossC + f.lossA*(p+d) + f.lossB*(p+d)*(p+d))
	return (p + d + lossPD) * k.hours, lossP * k.hours, (d + lossPD - lossP) * k.hours
}
