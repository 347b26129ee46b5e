package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// Scenario is a generated grid with its registry, purchases and hidden
// incidents. It is immutable once built and safe for concurrent use.
type Scenario struct {
	cfg         Config
	seedHash    uint64
	start       time.Time
	startUnix   int64
	startDayAbs int64
	ivS         int
	steps       int
	days        int
	hh          *households

	feeders []feederSim
	meters  []meterSim
	sites   []siteSim
	extras  []extra
	divs    []diversion
	attacks []attack
	offices []officeSim
	moves   []transfer

	licenses  []schemas.License
	rigs      []schemas.Rig
	meterRecs []schemas.Meter
	purchases []schemas.Purchase
	truth     []Truth
}

// feederSim is a feeder: its head meter, then its other meters at
// meters[head+1:end].
type feederSim struct {
	id, oblast, class string
	typ               feederType
	head, end         int
	long              bool // meters every 1800 s instead of the base interval
	lossA, lossB      float64
	lossC             float64 // no-load losses, kW: transformers draw them whatever the load
	div               int32
	meanKW            float64 // estimated mean metered load
	hospital          bool
	noHead            bool  // the feeder has no head meter (PresetOffices)
	moves             []int // transfers it gives or takes load in
}

type feederType uint8

const (
	feederResidential feederType = iota
	feederCommercial
	feederIndustrial
	feederMining
)

var feederClass = [...]string{schemas.ClassResidential, schemas.ClassCommercial, schemas.ClassIndustrial, schemas.ClassMining}

// Config returns the scenario's config with defaults applied.
func (s *Scenario) Config() Config { return s.cfg }

// Start returns the start of the first metering interval.
func (s *Scenario) Start() time.Time { return s.start }

// End returns the end of the last metering interval.
func (s *Scenario) End() time.Time { return s.stepTime(s.steps) }

// Interval returns the base metering interval.
func (s *Scenario) Interval() time.Duration { return time.Duration(s.ivS) * time.Second }

// Steps returns the number of base metering intervals.
func (s *Scenario) Steps() int { return s.steps }

// Days returns the number of local days the scenario touches.
func (s *Scenario) Days() int { return s.days }

// StepsPerDay returns the number of base intervals in a day.
func (s *Scenario) StepsPerDay() int { return 86400 / s.ivS }

// Licenses returns every licence record, several per licence where it changed
// during the scenario, ordered by updated_at.
func (s *Scenario) Licenses() []schemas.License { return s.licenses }

// Rigs returns every rig record, several per rig where it changed during the
// scenario, ordered by updated_at.
func (s *Scenario) Rigs() []schemas.Rig { return s.rigs }

// Meters returns every meter record.
func (s *Scenario) Meters() []schemas.Meter { return s.meterRecs }

// Purchases returns the marketplace purchases ordered by time.
func (s *Scenario) Purchases() []schemas.Purchase { return s.purchases }

// Truth returns the scenario's incidents.
func (s *Scenario) Truth() []Truth { return s.truth }

// dayStart returns local midnight starting scenario day d.
func (s *Scenario) dayStart(d int) time.Time {
	y, m, dd := s.start.In(schemas.Local).Date()
	return time.Date(y, m, dd+d, 0, 0, 0, 0, schemas.Local).UTC()
}

func (s *Scenario) stepTime(t int) time.Time {
	return time.Unix(s.startUnix+int64(t)*int64(s.ivS), 0).UTC()
}

// builder holds the state used only while building a scenario.
type builder struct {
	s       *Scenario
	rng     *rand.Rand
	want    map[string]bool
	models  []asicModel
	weights []float64
	hhMean  []float64

	ops       []opSim
	siteOps   []int // site -> operator
	siteRigs  [][]int
	siteEv    [][]siteEvent
	changed   []bool // site had legitimate registry changes
	siteUsed  []bool // site carries an incident
	opUsed    []bool // operator carries an operator-level incident
	rigSerial int
	oversized map[[2]int]int // (operator, day) -> truth index
	shortfall map[int]int    // operator -> truth index
	sfRange   map[int][2]float64
	sfDay     map[int]int
	siteTruth []int // over_capacity / inactive truth index per site, -1
	divTruth  map[int]int
	extTruth  map[int]int
	movTruth  map[int]int
}

type siteEvent struct {
	t          int
	dAct, dReg float64
}

// opSim is a mining operator and its licence.
type opSim struct {
	id, name, lic     string
	validFrom         time.Time
	validTo           time.Time
	issued            time.Time
	capKW             float64 // 0 = no licensed capacity
	capFromT          int     // >= 0: capacity lowered by a record at this interval
	capHeadroom       float64 // licensed capacity over peak registered capacity; 0 = none
	sites             []int
	status            []licChange // later records
	renewAt           int         // >= 0: legitimately renewed at this interval
	oldLic            bool        // also holds an expired earlier licence
	violationCapacity bool
}

type licChange struct {
	at     time.Time
	status string
}

// New builds the scenario cfg describes.
func New(cfg Config) (*Scenario, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	hh, err := loadHouseholds()
	if err != nil {
		return nil, err
	}
	models, weights, err := fleetModels()
	if err != nil {
		return nil, err
	}
	s := &Scenario{
		cfg:       cfg,
		seedHash:  mix(uint64(cfg.Seed) ^ 0x7269677761746368),
		start:     cfg.Start,
		startUnix: cfg.Start.Unix(),
		ivS:       cfg.IntervalS,
		steps:     cfg.Days * 86400 / cfg.IntervalS,
		hh:        hh,
	}
	s.startDayAbs = s.tickAt(0).dayAbs
	s.days = s.tickAt(s.steps-1).day + 1
	b := &builder{
		s: s, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6b7a)), want: map[string]bool{},
		models: models, weights: weights,
		oversized: map[[2]int]int{}, shortfall: map[int]int{}, sfRange: map[int][2]float64{}, sfDay: map[int]int{},
		divTruth: map[int]int{}, extTruth: map[int]int{}, movTruth: map[int]int{},
	}
	for _, k := range cfg.Incidents {
		b.want[k] = true
	}
	for _, v := range hh.wh {
		var sum float64
		for _, x := range v {
			sum += float64(x)
		}
		b.hhMean = append(b.hhMean, sum/float64(len(v))/1000*2) // kW
	}
	switch cfg.Preset {
	case PresetTheft:
		b.theftGrid()
	case PresetOffices:
		b.officesGrid()
	default:
		b.grid()
	}
	b.mining()
	b.incidents()
	b.licenses()
	b.energy()
	b.finish()
	return s, nil
}

func (b *builder) uniform(lo, hi float64) float64 { return lo + (hi-lo)*b.rng.Float64() }

func (b *builder) pickWeighted(w []float64) int {
	var sum float64
	for _, x := range w {
		sum += x
	}
	u := b.rng.Float64() * sum
	for i, x := range w {
		if u < x {
			return i
		}
		u -= x
	}
	return len(w) - 1
}

// randTick returns a base interval between fractions lo and hi of the period.
func (b *builder) randTick(lo, hi float64) int {
	return int(float64(b.s.steps) * b.uniform(lo, hi))
}

var (
	oblasts      = []string{"Almaty", "Almaty city", "Astana", "Shymkent", "Turkistan", "Karaganda", "East Kazakhstan", "Abai", "Pavlodar", "Aktobe", "Jambyl", "Kostanay", "West Kazakhstan", "Atyrau", "Mangystau", "Kyzylorda", "Akmola", "North Kazakhstan", "Jetisu", "Ulytau"}
	oblastPop    = []float64{1.5, 2.2, 1.4, 1.2, 2.1, 1.1, 0.7, 0.6, 0.75, 0.9, 1.2, 0.8, 0.7, 0.7, 0.75, 0.8, 0.8, 0.55, 0.7, 0.2}
	oblastMining = []float64{1, 0, 0.3, 0, 0, 3, 3, 2, 4, 0.3, 0.3, 0.5, 0, 0, 0, 0, 1, 0.3, 0.3, 0.5}
)

func (b *builder) grid() {
	s, cfg := b.s, b.s.cfg
	F := cfg.Feeders
	nMin := max(1, int(math.Round(0.18*float64(F))))
	nInd := int(math.Round(0.12 * float64(F)))
	nCom := int(math.Round(0.08 * float64(F)))
	if F < 4 {
		nInd, nCom = 0, 0
	}
	types := make([]feederType, F)
	for i := range types {
		switch {
		case i < nMin:
			types[i] = feederMining
		case i < nMin+nInd:
			types[i] = feederIndustrial
		case i < nMin+nInd+nCom:
			types[i] = feederCommercial
		}
	}
	b.rng.Shuffle(F, func(i, j int) { types[i], types[j] = types[j], types[i] })
	mpf := float64(cfg.MetersPerFeeder)
	for fi, typ := range types {
		w := oblastPop
		if typ == feederMining {
			w = oblastMining
		}
		f := feederSim{id: fmt.Sprintf("FDR-%05d", fi+1), oblast: oblasts[b.pickWeighted(w)], class: feederClass[typ], typ: typ, div: -1}
		f.long = s.ivS == 900 && b.rng.Float64() < 0.1
		f.head = len(s.meters)
		s.meters = append(s.meters, meterSim{kind: kindHead, feeder: int32(fi), site: -1, extra: -1, attack: -1, office: -1, gapMul: 0.3})
		add := func(k meterKind) { s.meters = append(s.meters, b.newMeter(fi, k)) }
		mix := func(n int, social, commercial float64) {
			for range n {
				switch u := b.rng.Float64(); {
				case u < social:
					if b.rng.Float64() < 0.35 {
						add(kindHospital)
					} else {
						add(kindSchool)
					}
				case u < social+commercial:
					switch v := b.rng.Float64(); {
					case v < 0.15:
						add(kindColdStore)
					case v < 0.25:
						add(kindSteady)
					default:
						add(kindCommercial)
					}
				default:
					add(kindResidential)
				}
			}
		}
		switch typ {
		case feederResidential:
			mix(max(3, int(mpf*b.uniform(0.95, 1.45)))-1, 0.05, 0.1)
		case feederCommercial:
			mix(max(3, int(mpf*b.uniform(0.6, 1.0))), 0.1, 0.55)
		case feederIndustrial:
			for range 2 + b.rng.IntN(4) {
				if b.rng.Float64() < 0.6 {
					add(kindIndustry24)
				} else {
					add(kindIndustryDay)
				}
			}
			mix(max(2, int(mpf*b.uniform(0.4, 0.8))), 0.05, 0.2)
		case feederMining:
			for range 1 + b.rng.IntN(3) {
				m := b.newMeter(fi, kindSite)
				m.site = int32(len(s.sites))
				s.sites = append(s.sites, siteSim{id: fmt.Sprintf("SITE-%04d", len(s.sites)+1), meter: len(s.meters), feeder: fi,
					cool: b.uniform(1.03, 1.10), utilLo: b.uniform(0.9, 0.97), curtailP: b.uniform(0.05, 0.35)})
				s.meters = append(s.meters, m)
			}
			if b.rng.Float64() < 0.3 {
				add(kindIndustry24)
			}
			mix(max(2, int(mpf*b.uniform(0.15, 0.5))), 0.03, 0.1)
		}
		f.end = len(s.meters)
		for mi := f.head + 1; mi < f.end; mi++ {
			f.hospital = f.hospital || s.meters[mi].kind == kindHospital
		}
		s.feeders = append(s.feeders, f)
	}
}

func (b *builder) newMeter(fi int, k meterKind) meterSim {
	m := meterSim{feeder: int32(fi), kind: k, site: -1, extra: -1, attack: -1, office: -1, gapMul: b.uniform(0.3, 2.5)}
	switch k {
	case kindResidential:
		m.hh = int32(b.rng.IntN(len(b.s.hh.wh)))
		m.dayOff = int32(7 * b.rng.IntN(b.s.hh.days/7))
		m.scale = b.uniform(0.3, 0.85)
	case kindCommercial:
		m.scale = math.Min(300, math.Max(3, math.Exp(math.Log(20)+0.8*b.rng.NormFloat64())))
		m.base = b.uniform(0.12, 0.35)
		m.open = 7 + float64(b.rng.IntN(7))/2
		m.close = 17 + float64(b.rng.IntN(9))/2
		m.sat, m.sun = b.uniform(0.2, 0.95), b.uniform(0, 0.7)
	case kindColdStore:
		m.scale = b.uniform(20, 150)
	case kindSteady:
		// Pumps, ventilation, ovens and refrigeration that never stop: a
		// steady level of a few to tens of kW, a wobble of 2-6% between
		// readings (thermostats, controllers), a little more by day.
		m.scale = math.Min(60, math.Exp(math.Log(8)+0.8*b.rng.NormFloat64()))
		m.base = b.uniform(0, 0.35)
		m.sat = b.uniform(0.035, 0.1)
	case kindHospital:
		m.scale = b.uniform(80, 450)
	case kindSchool:
		m.scale = b.uniform(20, 120)
		m.base = b.uniform(0.08, 0.18)
		m.open = 7.5 + float64(b.rng.IntN(3))/2
		m.close = 16 + float64(b.rng.IntN(5))/2
	case kindIndustry24:
		m.scale = b.uniform(300, 2500)
	case kindIndustryDay:
		m.scale = b.uniform(200, 1800)
		m.base = b.uniform(0.15, 0.35)
	case kindSite:
		m.gapMul = 0.5
	}
	return m
}

// meanKW estimates a meter's mean load, for loss coefficients and diversion
// sizes; the truth is computed from the simulated load itself.
func (b *builder) meanKW(m *meterSim) float64 {
	switch m.kind {
	case kindResidential:
		return m.scale * b.hhMean[m.hh]
	case kindCommercial:
		return m.scale * (m.base + 0.35)
	case kindColdStore:
		return m.scale * 0.63
	case kindSteady:
		return m.scale * (1 + 0.4*m.base)
	case kindOffice:
		o := &b.s.offices[m.office]
		return o.peak*(o.base+0.25) + o.plant
	case kindHospital:
		return m.scale * 0.9
	case kindSchool:
		return m.scale * (m.base + 0.25)
	case kindIndustry24:
		return m.scale * 0.92
	case kindIndustryDay:
		return m.scale * (m.base + 0.4)
	case kindSite:
		return scheduleAt(b.s.sites[m.site].actual, 0) * b.s.sites[m.site].cool * 0.95
	}
	return 0
}

var (
	opPlaces = []string{"Ekibastuz", "Irtysh", "Altai", "Saryarka", "Balkhash", "Pavlodar", "Semey", "Ulba", "Steppe", "Nura", "Tobol", "Esil", "Zhetysu", "Karkaraly", "Bayanaul", "Oskemen", "Temirtau", "Aksu", "Shulbinsk", "Kazakh", "Zaisan", "Ertis"}
	opKinds  = []string{"Digital", "Hash", "Mining", "Data Center", "Compute", "Energy Tech", "Blockchain", "Crypto", "Datacom"}
	opForms  = []string{"LLP", "LLP", "LLP", "JSC"}
)

func (b *builder) mining() {
	s, cfg := b.s, b.s.cfg
	nSites := len(s.sites)
	nOps := cfg.Operators
	if nOps == 0 {
		nOps = max(8, int(math.Round(84*float64(cfg.Feeders)/2000)))
	}
	nOps = min(nOps, nSites)
	seen := map[string]bool{}
	for i := range nOps {
		name := ""
		for try := 0; name == "" || seen[name]; try++ {
			name = opPlaces[b.rng.IntN(len(opPlaces))] + " " + opKinds[b.rng.IntN(len(opKinds))] + " " + opForms[b.rng.IntN(len(opForms))]
			if try > 5 {
				name = fmt.Sprintf("%s %d", name, i+1)
			}
		}
		seen[name] = true
		issued := cfg.Start.Add(-time.Duration(200+b.rng.IntN(700)) * 24 * time.Hour).Truncate(time.Hour)
		o := opSim{
			id: fmt.Sprintf("OP-%03d", i+1), name: name, lic: fmt.Sprintf("KZ-MIN-%d-%04d", issued.Year(), i+1),
			issued: issued, validFrom: issued, validTo: issued.AddDate(3+b.rng.IntN(3), 0, 0),
			capFromT: -1, renewAt: -1, oldLic: b.rng.Float64() < 0.2,
		}
		if !o.validTo.After(cfg.Start.AddDate(0, 0, cfg.Days+60)) {
			o.validTo = cfg.Start.AddDate(1, 0, 0)
		}
		if b.rng.Float64() < 0.45 {
			o.capHeadroom = b.uniform(1.15, 1.6)
		}
		b.ops = append(b.ops, o)
	}
	b.opUsed = make([]bool, nOps)
	b.siteOps = make([]int, nSites)
	b.siteRigs = make([][]int, nSites)
	b.siteEv = make([][]siteEvent, nSites)
	b.changed = make([]bool, nSites)
	b.siteUsed = make([]bool, nSites)
	b.siteTruth = make([]int, nSites)
	perm := b.rng.Perm(nSites)
	for i, si := range perm {
		op := i
		if i >= nOps {
			op = b.rng.IntN(nOps)
		}
		b.siteOps[si] = op
		b.ops[op].sites = append(b.ops[op].sites, si)
		s.sites[si].operator = op
		b.siteTruth[si] = -1
	}
	if nSites == 0 {
		return
	}
	w := make([]float64, nSites)
	var sum float64
	for i := range w {
		w[i] = math.Exp(0.6 * b.rng.NormFloat64())
		sum += w[i]
	}
	for si := range s.sites {
		n := max(20, int(math.Round(float64(cfg.Rigs)*w[si]/sum)))
		op := &b.ops[b.siteOps[si]]
		primary, secondary := b.pickWeighted(b.weights), b.pickWeighted(b.weights)
		for range n {
			mdl := primary
			if b.rng.Float64() < 0.3 {
				mdl = secondary
			}
			status := schemas.RigActive
			switch u := b.rng.Float64(); {
			case u < 0.01:
				status = schemas.RigSuspended
			case u < 0.02:
				status = schemas.RigDecommissioned
			}
			at := cfg.Start.Add(-time.Duration(3600+b.rng.IntN(400*86400)) * time.Second)
			if at.Before(op.issued) {
				at = op.issued.Add(time.Duration(b.rng.IntN(30*86400)) * time.Second)
				if !at.Before(cfg.Start) {
					at = cfg.Start.Add(-time.Hour)
				}
			}
			b.newRig(si, b.models[mdl], b.models[mdl].PowerW, status, at, 0)
		}
		// Legitimate mid-period registrations: load follows within hours.
		if b.rng.Float64() < 0.35 {
			t := b.randTick(0.05, 0.9)
			lag := b.rng.IntN(6*3600/s.ivS + 1)
			for range max(1, int(float64(n)*b.uniform(0.05, 0.25))) {
				b.newRig(si, b.models[primary], b.models[primary].PowerW, schemas.RigActive, b.tickTime(t), lag)
			}
			b.changed[si] = true
		}
		// A site closed for good: every rig decommissioned, the load stopping
		// a little before the registry says so. Its feeder keeps the
		// transformers' no-load losses while the metered load falls away.
		if b.rng.Float64() < 0.12 && !b.changed[si] {
			t := b.randTick(0.3, 0.8)
			lag := b.rng.IntN(3*3600/s.ivS + 1)
			for _, ri := range b.activeRigs(si, t) {
				b.setRig(ri, func(r *schemas.Rig) { r.Status = schemas.RigDecommissioned }, b.tickTime(t), -lag)
			}
			b.changed[si], b.siteUsed[si] = true, true
			continue
		}
		// Legitimate decommissions: load stops a little before the registry says so.
		if b.rng.Float64() < 0.25 {
			t := b.randTick(0.05, 0.9)
			lag := b.rng.IntN(6*3600/s.ivS + 1)
			var moved []int
			for _, ri := range b.activeRigs(si, 0) {
				if b.rng.Float64() > 0.12 {
					continue
				}
				st := schemas.RigDecommissioned
				if b.rng.Float64() < 0.3 {
					st = schemas.RigSuspended
				}
				b.setRig(ri, func(r *schemas.Rig) { r.Status = st }, b.tickTime(t), -lag)
				if st == schemas.RigDecommissioned && len(moved) < 3 {
					moved = append(moved, ri)
				}
			}
			// Some decommissioned machines reappear at another site of the same
			// operator: the same serial, legitimately, once the first record is gone.
			if sites := op.sites; len(sites) > 1 && b.rng.Float64() < 0.6 {
				to := sites[b.rng.IntN(len(sites))]
				if to != si {
					t2 := t + 1 + b.rng.IntN(48*3600/s.ivS)
					for _, ri := range moved {
						if t2 < s.steps {
							r := b.s.rigs[ri]
							mdl := b.modelByName(r.Model)
							nr := b.newRig(to, mdl, r.RatedPowerW, schemas.RigActive, b.tickTime(t2), 1)
							s.rigs[nr].Serial = r.Serial
						}
					}
					b.changed[to] = true
				}
			}
			b.changed[si] = true
		}
	}
}

func (b *builder) modelByName(name string) asicModel {
	for _, m := range b.models {
		if m.Name == name {
			return m
		}
	}
	return b.models[0]
}

// tickTime returns a time inside base interval t at which a registry record
// changes.
func (b *builder) tickTime(t int) time.Time {
	if t <= 0 {
		return b.s.start.Add(-time.Duration(1+b.rng.IntN(3600)) * time.Second)
	}
	return b.s.stepTime(t).Add(time.Duration(b.rng.IntN(b.s.ivS)) * time.Second)
}

// timeTick returns the base interval whose registry state first includes a
// record made at time at: readings are judged at their end.
func (b *builder) timeTick(at time.Time) int {
	d := at.Unix() - b.s.startUnix
	if d < 0 {
		return -1 << 30
	}
	return int(d / int64(b.s.ivS))
}

// newRig registers a rig at site si at time at; its load starts lag intervals
// after the registration takes effect. Returns the rig's record index.
func (b *builder) newRig(si int, mdl asicModel, declaredW float64, status string, at time.Time, lag int) int {
	s := b.s
	op := &b.ops[b.siteOps[si]]
	b.rigSerial++
	prefix := "SM"
	switch {
	case strings.HasPrefix(mdl.Name, "Whatsminer"):
		prefix = "WM"
	case strings.HasPrefix(mdl.Name, "Avalon"):
		prefix = "AV"
	}
	serial := fmt.Sprintf("%s%s%07d%03X", prefix, strings.ToUpper(string(rune('A'+b.rng.IntN(26)))), 1000000+b.rigSerial*7919%9000000, b.rng.IntN(4096))
	h := mdl.HashTHs
	r := schemas.Rig{
		RigID: fmt.Sprintf("RIG-%07d", b.rigSerial), Serial: serial, Model: mdl.Name, RatedPowerW: declaredW, HashrateTHs: &h,
		OperatorID: op.id, LicenseID: op.lic, SiteID: s.sites[si].id, Status: status, UpdatedAt: at,
	}
	s.rigs = append(s.rigs, r)
	ri := len(s.rigs) - 1
	b.siteRigs[si] = append(b.siteRigs[si], ri)
	if status == schemas.RigActive {
		t := b.timeTick(at)
		b.siteEv[si] = append(b.siteEv[si], siteEvent{t: t, dReg: declaredW / 1000}, siteEvent{t: t + lag, dAct: mdl.PowerW / 1000})
	}
	return ri
}

// setRig appends a new version of the rig whose latest record is at index
// ri, changed by f, at time at; the load change happens lag intervals after
// the record takes effect.
func (b *builder) setRig(ri int, f func(*schemas.Rig), at time.Time, lag int) int {
	s := b.s
	old := s.rigs[ri]
	r := old
	f(&r)
	r.UpdatedAt = at
	s.rigs = append(s.rigs, r)
	si := b.siteIndex(r.SiteID)
	nr := len(s.rigs) - 1
	for i, x := range b.siteRigs[si] {
		if x == ri {
			b.siteRigs[si][i] = nr
		}
	}
	t := b.timeTick(at)
	act := b.modelByName(r.Model).PowerW / 1000
	var dReg, dAct float64
	if old.Status == schemas.RigActive {
		dReg -= old.RatedPowerW / 1000
		dAct -= act
	}
	if r.Status == schemas.RigActive {
		dReg += r.RatedPowerW / 1000
		dAct += act
	}
	b.siteEv[si] = append(b.siteEv[si], siteEvent{t: t, dReg: dReg}, siteEvent{t: max(t+lag, -1<<30), dAct: dAct})
	return nr
}

func (b *builder) siteIndex(id string) int {
	var n int
	fmt.Sscanf(id, "SITE-%d", &n)
	return n - 1
}

// activeRigs returns the latest record indexes of the site's rigs active at
// base interval t (by registry).
func (b *builder) activeRigs(si, t int) []int {
	var out []int
	for _, ri := range b.siteRigs[si] {
		r := &b.s.rigs[ri]
		if r.Status == schemas.RigActive && b.timeTick(r.UpdatedAt) <= t {
			out = append(out, ri)
		}
	}
	return out
}

// schedules turns a site's events into its registered and actual schedules.
func (b *builder) schedules(si int) {
	ev := b.siteEv[si]
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].t < ev[j].t })
	st := &b.s.sites[si]
	st.actual, st.reg = st.actual[:0], st.reg[:0]
	var act, reg float64
	for i, e := range ev {
		act += e.dAct
		reg += e.dReg
		if i+1 < len(ev) && ev[i+1].t == e.t {
			continue
		}
		t := max(e.t, -1)
		st.actual = append(st.actual, kwStep{t, math.Max(0, act)})
		st.reg = append(st.reg, kwStep{t, math.Max(0, reg)})
	}
}

// finish orders the records, assigns meter ids and writes meter records.
func (b *builder) finish() {
	s := b.s
	perm := b.rng.Perm(len(s.meters))
	for i := range s.meters {
		s.meters[i].id = fmt.Sprintf("MTR-%08d", 10000000+perm[i]*37%89999999)
	}
	for fi := range s.feeders {
		f := &s.feeders[fi]
		for mi := f.head; mi < f.end; mi++ {
			m := &s.meters[mi]
			if mi == f.head && f.noHead {
				continue
			}
			rec := schemas.Meter{MeterID: m.id, FeederID: f.id, Role: schemas.RoleCustomer, Oblast: f.oblast,
				UpdatedAt: s.start.Add(-time.Duration(30*86400+int(s.hash(tagNoise, uint64(mi), 1<<50)%(900*86400))) * time.Second)}
			switch m.kind {
			case kindHead:
				rec.Role, rec.Class = schemas.RoleFeederHead, f.class
			case kindResidential:
				rec.Class = schemas.ClassResidential
			case kindCommercial, kindColdStore, kindSteady:
				rec.Class = schemas.ClassCommercial
			case kindOffice:
				rec.Class = s.offices[m.office].class
			case kindHospital, kindSchool:
				rec.Class = schemas.ClassSocial
			case kindIndustry24, kindIndustryDay:
				rec.Class = schemas.ClassIndustrial
			case kindSite:
				rec.Role, rec.Class, rec.SiteID = schemas.RoleSite, schemas.ClassMining, s.sites[m.site].id
			}
			s.meterRecs = append(s.meterRecs, rec)
		}
	}
	// Fill ids the incidents could not know before meter ids existed.
	meterID := func(ref string) string {
		var mi int
		fmt.Sscanf(ref, "#%d", &mi)
		return s.meters[mi].id
	}
	for i := range s.truth {
		t := &s.truth[i]
		if strings.HasPrefix(t.MeterID, "#") {
			t.MeterID = meterID(t.MeterID)
		}
		for j, ref := range t.Suspects {
			t.Suspects[j] = meterID(ref)
		}
		if t.EntityType == schemas.EntityMeter {
			t.EntityID = t.MeterID
		}
		if t.Kind == schemas.KindFeederImbalance {
			t.Related = []string{t.MeterID}
		}
	}
	// Records and truth carry UTC times, as the contract's files do.
	for i := range s.licenses {
		l := &s.licenses[i]
		l.ValidFrom, l.ValidTo, l.UpdatedAt = l.ValidFrom.UTC(), l.ValidTo.UTC(), l.UpdatedAt.UTC()
	}
	for i := range s.rigs {
		s.rigs[i].UpdatedAt = s.rigs[i].UpdatedAt.UTC()
	}
	for i := range s.meterRecs {
		s.meterRecs[i].UpdatedAt = s.meterRecs[i].UpdatedAt.UTC()
	}
	for i := range s.truth {
		s.truth[i].Start, s.truth[i].End = s.truth[i].Start.UTC(), s.truth[i].End.UTC()
		s.truth[i].AtStart = !s.truth[i].Start.After(s.start)
	}
	slices.SortStableFunc(s.licenses, func(a, b schemas.License) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	slices.SortStableFunc(s.rigs, func(a, b schemas.Rig) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	slices.SortStableFunc(s.meterRecs, func(a, b schemas.Meter) int { return strings.Compare(a.MeterID, b.MeterID) })
	slices.SortStableFunc(s.truth, func(a, b Truth) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.EntityID, b.EntityID)
	})
}
