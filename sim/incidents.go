package sim

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

func f64(v float64) *float64 { return &v }

// onset returns the base interval an incident starts at: some at the very
// start, most mid-period.
func (b *builder) onset() (int, bool) {
	if b.rng.Float64() < 0.2 {
		return 0, true
	}
	return b.randTick(0.1, 0.75), false
}

func (b *builder) freeOp() int {
	for _, op := range b.rng.Perm(len(b.ops)) {
		if !b.opUsed[op] {
			b.opUsed[op] = true
			return op
		}
	}
	return -1
}

func (b *builder) freeSite() int {
	for _, si := range b.rng.Perm(len(b.s.sites)) {
		if !b.siteUsed[si] {
			b.siteUsed[si] = true
			return si
		}
	}
	return -1
}

func (b *builder) siteTruthBase(kind string, si int) Truth {
	s := b.s
	st := &s.sites[si]
	op := &b.ops[st.operator]
	return Truth{Kind: kind, EntityType: schemas.EntityMeter, MeterID: fmt.Sprintf("#%d", st.meter),
		FeederID: s.feeders[st.feeder].id, SiteID: st.id, OperatorID: op.id, LicenseID: op.lic,
		Oblast: s.feeders[st.feeder].oblast, Related: []string{st.id}, End: s.End()}
}

func (b *builder) incidents() {
	s := b.s
	switch s.cfg.Preset {
	case PresetTheft:
		b.losses(func(fi int) bool { return fi%2 == 0 })
		if b.want[schemas.KindFeederImbalance] {
			b.theftIncidents()
		}
		return
	case PresetOffices:
		if b.want[schemas.KindDataQuality] {
			b.stuckFaults()
		}
		return
	}
	for si := range s.sites {
		b.schedules(si)
	}
	nSites, nOps := len(s.sites), len(b.ops)

	// A site meter whose rigs were all deregistered while the load goes on.
	if b.want[schemas.KindUnregisteredLoad] && nSites >= 6 {
		for _, si := range b.rng.Perm(nSites) {
			if b.changed[si] || b.siteUsed[si] {
				continue
			}
			b.siteUsed[si] = true
			t := b.randTick(0.2, 0.7)
			at := b.tickTime(t)
			for _, ri := range b.activeRigs(si, t) {
				b.setRig(ri, func(r *schemas.Rig) { r.Status = schemas.RigDecommissioned }, at, 0)
			}
			// The machines keep running: undo the load drop.
			b.siteEv[si] = append(b.siteEv[si], siteEvent{t: t, dAct: scheduleAt(s.sites[si].actual, t)})
			b.schedules(si)
			tr := b.siteTruthBase(schemas.KindUnregisteredLoad, si)
			tr.Start, tr.Pattern = s.stepTime(t), "site_rigs_inactive"
			tr.Detail = "every rig at the site was deregistered but the machines kept running"
			b.siteTruth[si] = len(s.truth)
			s.truth = append(s.truth, tr)
			break
		}
	}

	if b.want[schemas.KindOverCapacity] && nSites > 0 {
		n := min(max(2, int(math.Round(0.25*float64(nSites)))), nSites-nSites/3)
		for i := range n {
			si := b.freeSite()
			if si < 0 {
				break
			}
			t, atStart := b.onset()
			var frac float64
			switch {
			case atStart:
				frac = b.uniform(0.3, 0.6)
			case i%3 == 0:
				frac = b.uniform(0.12, 0.2)
			case i%3 == 1:
				frac = b.uniform(0.2, 0.35)
			default:
				frac = b.uniform(0.35, 0.6)
			}
			reg := scheduleAt(s.sites[si].reg, t)
			s.sites[si].hidden = []kwStep{{t, frac * reg}}
			tr := b.siteTruthBase(schemas.KindOverCapacity, si)
			tr.Start, tr.Pattern = s.stepTime(t), "hidden_rigs"
			tr.Detail = fmt.Sprintf("about %d unregistered rigs drawing +%.0f%% of the %.0f kW registered capacity", int(frac*reg/3.25+0.5), 100*frac, reg)
			b.siteTruth[si] = len(s.truth)
			s.truth = append(s.truth, tr)
		}
	}

	if b.want[schemas.KindUnregisteredLoad] {
		var cands []int
		for mi, m := range s.meters {
			if (m.kind == kindResidential || m.kind == kindCommercial) && m.extra < 0 {
				cands = append(cands, mi)
			}
		}
		n := min(max(3, int(math.Round(float64(s.cfg.Feeders)/5))), len(cands))
		patterns := []string{patternRoundClock, patternRoundClock, patternNight, patternEveningPause}
		for i, j := range b.rng.Perm(len(cands))[:n] {
			mi := cands[j]
			t, atStart := b.onset()
			if atStart && s.meters[mi].kind != kindResidential {
				// Mining already running when the data starts, behind a
				// business meter at a business's level, is the business as
				// far as its meter shows: only households carry it here.
				t = b.randTick(0.1, 0.75)
			}
			var rigs int
			switch i % 3 {
			case 0:
				rigs = 10 + b.rng.IntN(11)
			case 1:
				rigs = 20 + b.rng.IntN(31)
			default:
				rigs = 50 + b.rng.IntN(71)
			}
			e := extra{meter: mi, onset: t, kw: float64(rigs) * 3.25 * b.uniform(1.03, 1.08), pattern: patterns[i%len(patterns)]}
			s.meters[mi].extra = int32(len(s.extras))
			s.extras = append(s.extras, e)
			f := &s.feeders[s.meters[mi].feeder]
			b.extTruth[len(s.extras)-1] = len(s.truth)
			s.truth = append(s.truth, Truth{Kind: schemas.KindUnregisteredLoad, EntityType: schemas.EntityMeter,
				MeterID: fmt.Sprintf("#%d", mi), FeederID: f.id, Oblast: f.oblast, Start: s.stepTime(t), End: s.End(),
				Pattern: e.pattern, Detail: fmt.Sprintf("%d rigs, %.0f kW, behind a %s meter", rigs, e.kw, classOf(s.meters[mi].kind))})
		}
	}

	if b.want[schemas.KindRegistryViolation] && nOps > 0 {
		b.registryViolations()
	}
	for si := range s.sites {
		b.schedules(si)
	}

	// Loss coefficients and feeder sizes need the final site schedules.
	b.losses(func(int) bool { return b.rng.Float64() < 0.1 })

	if b.want[schemas.KindFeederImbalance] {
		var cands []int
		for fi, f := range s.feeders {
			if f.typ != feederMining {
				cands = append(cands, fi)
			}
		}
		n := min(max(2, int(math.Round(float64(s.cfg.Feeders)/8))), len(cands))
		perm := b.rng.Perm(len(cands))
		// Put a feeder serving a hospital first: its flat night load hides theft.
		for i, j := range perm {
			if s.feeders[cands[j]].hospital {
				perm[0], perm[i] = perm[i], perm[0]
				break
			}
		}
		patterns := []string{patternProportional, patternFlat, patternNight}
		for i, j := range perm[:n] {
			fi := cands[j]
			f := &s.feeders[fi]
			t, atStart := b.onset()
			var frac float64
			switch {
			case atStart:
				frac = b.uniform(0.15, 0.4)
			case i%3 == 0:
				frac = b.uniform(0.04, 0.08)
			case i%3 == 1:
				frac = b.uniform(0.08, 0.2)
			default:
				frac = b.uniform(0.2, 0.4)
			}
			dv := diversion{feeder: fi, onset: t, frac: frac, meanKW: f.meanKW, pattern: patterns[i%len(patterns)]}
			f.div = int32(len(s.divs))
			s.divs = append(s.divs, dv)
			b.divTruth[len(s.divs)-1] = len(s.truth)
			s.truth = append(s.truth, Truth{Kind: schemas.KindFeederImbalance, EntityType: schemas.EntityFeeder, EntityID: f.id,
				MeterID: fmt.Sprintf("#%d", f.head), FeederID: f.id, Oblast: f.oblast, Start: s.stepTime(t), End: s.End(),
				Pattern: dv.pattern})
		}
	}

	if b.want[schemas.KindFeederImbalance] {
		// False data injection on residential feeders: a few meters
		// under-report, on about half the days, from the first day or from
		// mid-period.
		var cands []int
		for fi, f := range s.feeders {
			if f.typ == feederResidential && f.div < 0 && f.end-f.head > 20 {
				cands = append(cands, fi)
			}
		}
		kinds := append(slices.Clone(attackKinds), attackMix)
		for i, j := range b.rng.Perm(len(cands))[:min(len(cands), max(1, int(math.Round(float64(s.cfg.Feeders)/20))))] {
			from := 0
			if b.rng.Float64() < 0.5 {
				from = int(float64(s.days) * b.uniform(0.2, 0.6))
			}
			f := &s.feeders[cands[j]]
			n := max(5, (f.end-f.head)*3/20) // 15% of the meters
			b.attackFeeder(cands[j], kinds[(i+b.rng.IntN(len(kinds)))%len(kinds)], n, b.attackDays(from, (s.days-from+1)/2), true)
		}
	}

	if b.want[schemas.KindTopologyChange] {
		b.transfers()
	}

	if b.want[schemas.KindPurchaseShortfall] && nOps > 0 {
		for range max(1, int(math.Round(0.15*float64(nOps)))) {
			op := b.freeOp()
			if op < 0 {
				break
			}
			lo := b.uniform(0.6, 0.85)
			b.sfRange[op] = [2]float64{lo, math.Min(0.95, lo+b.uniform(0.05, 0.1))}
			if b.rng.Float64() < 0.6 {
				b.sfDay[op] = 1 + b.rng.IntN(max(1, s.days/2))
			}
			o := &b.ops[op]
			b.shortfall[op] = len(s.truth)
			s.truth = append(s.truth, Truth{Kind: schemas.KindPurchaseShortfall, EntityType: schemas.EntityOperator, EntityID: o.id,
				OperatorID: o.id, LicenseID: o.lic, Related: []string{o.lic}, Start: s.dayStart(b.sfDay[op]), End: s.End(), Pattern: "under_purchase",
				Detail: fmt.Sprintf("buys %.0f-%.0f%% of its metered consumption each day", 100*b.sfRange[op][0], 100*b.sfRange[op][1])})
		}
	}

	if b.want[schemas.KindOversizedPurchase] && nOps > 0 {
		for range min(50, max(3, int(math.Round(0.3*float64(nOps))))) {
			b.oversized[[2]int{b.rng.IntN(nOps), b.rng.IntN(s.days)}] = -1
		}
	}
}

// losses sets every feeder's mean load and technical losses: none where
// lossless says so (an observer meter measuring the exact total of its
// meters), else 1.5-5.5% of the mean load split into a fixed part (the
// transformers' no-load losses, there whatever the load), a part
// proportional to the load and one growing with its square.
func (b *builder) losses(lossless func(fi int) bool) {
	s := b.s
	for fi := range s.feeders {
		f := &s.feeders[fi]
		var p float64
		for mi := f.head + 1; mi < f.end; mi++ {
			p += b.meanKW(&s.meters[mi])
		}
		f.meanKW = math.Max(p, 1)
		if lossless(fi) {
			continue
		}
		tot, fc, fq := b.uniform(0.015, 0.055), b.uniform(0.08, 0.25), b.uniform(0.15, 0.35)
		f.lossC = fc * tot * f.meanKW
		f.lossB = fq * tot / f.meanKW
		f.lossA = (1 - fc - fq) * tot
	}
}

func classOf(k meterKind) string {
	if k == kindResidential {
		return schemas.ClassResidential
	}
	return schemas.ClassCommercial
}

// registryViolations plants each kind of registry violation at least once.
func (b *builder) registryViolations() {
	s := b.s
	licTruth := func(op int, t time.Time, pattern, detail string) *Truth {
		o := &b.ops[op]
		tr := Truth{Kind: schemas.KindRegistryViolation, EntityType: schemas.EntityLicense, EntityID: o.lic,
			OperatorID: o.id, LicenseID: o.lic, Start: t, End: s.End(), Pattern: pattern, Detail: detail}
		s.truth = append(s.truth, tr)
		return &s.truth[len(s.truth)-1]
	}
	rigsOf := func(op int) []string {
		var ids []string
		for _, si := range b.ops[op].sites {
			for _, ri := range b.siteRigs[si] {
				if s.rigs[ri].Status == schemas.RigActive {
					ids = append(ids, s.rigs[ri].RigID)
				}
			}
		}
		return ids
	}
	if op := b.freeOp(); op >= 0 {
		t := b.tickTime(b.randTick(0.1, 0.7))
		b.ops[op].status = append(b.ops[op].status, licChange{at: t, status: schemas.LicenseSuspended})
		tr := licTruth(op, t, "license_suspended", "rigs stay active under a licence suspended mid-period")
		tr.Related = append([]string{b.ops[op].lic}, rigsOf(op)...)
	}
	if op := b.freeOp(); op >= 0 {
		t := b.tickTime(b.randTick(0.1, 0.7))
		o := &b.ops[op]
		o.validTo = t
		o.status = append(o.status, licChange{at: t.Add(26 * time.Hour), status: schemas.LicenseExpired})
		tr := licTruth(op, t, "license_expired", "the licence's valid_to passes mid-period; rigs stay active")
		tr.Related = append([]string{o.lic}, rigsOf(op)...)
	}
	if op := b.freeOp(); op >= 0 {
		t := s.start.Add(-time.Duration(3+b.rng.IntN(27)) * 24 * time.Hour)
		b.ops[op].status = append(b.ops[op].status, licChange{at: t, status: schemas.LicenseRevoked})
		tr := licTruth(op, t, "license_revoked", "rigs registered active under a licence revoked before the period")
		tr.Related = append([]string{b.ops[op].lic}, rigsOf(op)...)
	}
	if op := b.freeOp(); op >= 0 {
		o := &b.ops[op]
		o.violationCapacity = true
		si := o.sites[0]
		for _, x := range o.sites {
			if scheduleAt(s.sites[x].reg, 0) > scheduleAt(s.sites[si].reg, 0) {
				si = x
			}
		}
		o.capKW = math.Round(scheduleAt(s.sites[si].reg, 0)*b.uniform(0.7, 0.9)/10) * 10
		start := s.start
		if b.rng.Float64() < 0.5 {
			o.capFromT = b.randTick(0.1, 0.7)
			start = b.tickTime(o.capFromT)
		}
		tr := licTruth(op, start, "site_over_licensed_capacity",
			fmt.Sprintf("site %s has %.0f kW registered, the licence allows %.0f kW", s.sites[si].id, scheduleAt(s.sites[si].reg, 0), o.capKW))
		tr.SiteID = s.sites[si].id
		tr.Related = []string{o.lic, s.sites[si].id}
	}
	// Rig-level violations go to operators whose licence is clean, so that an
	// alert on the licence can only mean this finding.
	cleanSites := func() []int {
		var out []int
		for si := range s.sites {
			if !b.opUsed[b.siteOps[si]] {
				out = append(out, si)
			}
		}
		return out
	}
	nRig := max(1, len(s.sites)/100)
	for range nRig {
		sites := cleanSites()
		if len(sites) < 2 {
			break
		}
		x, y := sites[b.rng.IntN(len(sites))], sites[b.rng.IntN(len(sites))]
		if x == y || b.siteTruth[y] >= 0 && s.truth[b.siteTruth[y]].Pattern == "site_rigs_inactive" {
			continue
		}
		act := b.activeRigs(x, 0)
		if len(act) == 0 {
			continue
		}
		a := s.rigs[act[b.rng.IntN(len(act))]]
		t, _ := b.onset()
		nr := b.newRig(y, b.modelByName(a.Model), a.RatedPowerW, schemas.RigActive, b.tickTime(t), 0)
		s.rigs[nr].Serial = a.Serial
		d := s.rigs[nr]
		s.truth = append(s.truth, Truth{Kind: schemas.KindRegistryViolation, EntityType: schemas.EntityRig, EntityID: d.RigID,
			RigID: d.RigID, SiteID: d.SiteID, OperatorID: d.OperatorID, LicenseID: d.LicenseID, Start: d.UpdatedAt, End: s.End(),
			Related: []string{a.RigID, d.LicenseID}, Pattern: "duplicate_serial",
			Detail: fmt.Sprintf("serial %s registered active at %s and %s", a.Serial, a.SiteID, d.SiteID)})
	}
	for range nRig {
		sites := cleanSites()
		if len(sites) == 0 {
			break
		}
		si := sites[b.rng.IntN(len(sites))]
		for _, x := range sites {
			if len(b.siteRigs[x]) > len(b.siteRigs[si]) && b.rng.Float64() < 0.5 {
				si = x
			}
		}
		act := b.activeRigs(si, 0)
		if len(act) == 0 {
			continue
		}
		ri := act[b.rng.IntN(len(act))]
		old := s.rigs[ri]
		factor := b.uniform(2.2, 3)
		if len(act) >= 200 && b.rng.Float64() < 0.4 {
			factor = b.uniform(0.25, 0.45)
		}
		p := math.Round(old.RatedPowerW * factor)
		var r schemas.Rig
		if b.rng.Float64() < 0.5 { // declared wrong from the start
			s.rigs[ri].RatedPowerW = p
			b.siteEv[si] = append(b.siteEv[si], siteEvent{t: -1, dReg: (p - old.RatedPowerW) / 1000})
			r = s.rigs[ri]
		} else {
			nr := b.setRig(ri, func(r *schemas.Rig) { r.RatedPowerW = p }, b.tickTime(b.randTick(0.1, 0.7)), 0)
			r = s.rigs[nr]
		}
		mdl := b.modelByName(r.Model)
		s.truth = append(s.truth, Truth{Kind: schemas.KindRegistryViolation, EntityType: schemas.EntityRig, EntityID: r.RigID,
			RigID: r.RigID, SiteID: r.SiteID, OperatorID: r.OperatorID, LicenseID: r.LicenseID, Start: r.UpdatedAt, End: s.End(),
			Related: []string{r.LicenseID}, Pattern: "rated_power_mismatch",
			Detail: fmt.Sprintf("%s declared at %.0f W, the model is rated %.0f W", r.Model, r.RatedPowerW, mdl.PowerW)})
	}
}

// licenses writes the licence records once every registration is known, so
// that clean licences cover their operator's peak registered capacity.
func (b *builder) licenses() {
	s := b.s
	// A clean licence expiring mid-period but renewed days before: no violation.
	for _, op := range b.rng.Perm(len(b.ops)) {
		o := &b.ops[op]
		if !b.opUsed[op] && s.days >= 6 {
			o.renewAt = b.randTick(0.2, 0.6)
			break
		}
	}
	for op := range b.ops {
		o := &b.ops[op]
		var peak float64
		for _, si := range o.sites {
			b.schedules(si)
			for _, st := range s.sites[si].reg {
				peak = math.Max(peak, st.kw)
			}
		}
		var total float64
		for _, si := range o.sites {
			var m float64
			for _, st := range s.sites[si].reg {
				m = math.Max(m, st.kw)
			}
			total += m
		}
		l := schemas.License{LicenseID: o.lic, OperatorID: o.id, OperatorName: o.name, Status: schemas.LicenseActive,
			ValidFrom: o.validFrom, ValidTo: o.validTo, UpdatedAt: o.issued}
		switch {
		case o.violationCapacity && o.capFromT >= 0:
			l.LicensedCapacityKW = f64(math.Ceil(total*1.3/100) * 100)
		case o.violationCapacity:
			l.LicensedCapacityKW = f64(o.capKW)
		case o.capHeadroom > 0:
			l.LicensedCapacityKW = f64(math.Ceil(total*o.capHeadroom/100) * 100)
		}
		if o.renewAt >= 0 {
			due := s.stepTime(o.renewAt + 2*86400/s.ivS)
			l.ValidTo = due
			s.licenses = append(s.licenses, l)
			l.ValidTo, l.UpdatedAt = due.AddDate(3, 0, 0), b.tickTime(o.renewAt)
		}
		s.licenses = append(s.licenses, l)
		if o.violationCapacity && o.capFromT >= 0 {
			l.LicensedCapacityKW, l.UpdatedAt = f64(o.capKW), b.tickTime(o.capFromT)
			s.licenses = append(s.licenses, l)
		}
		for _, c := range o.status {
			l.Status, l.UpdatedAt = c.status, c.at
			s.licenses = append(s.licenses, l)
		}
		if o.oldLic {
			from := o.issued.AddDate(-3, 0, 0)
			s.licenses = append(s.licenses, schemas.License{LicenseID: fmt.Sprintf("KZ-MIN-%d-%04d", from.Year(), op+9001),
				OperatorID: o.id, OperatorName: o.name, Status: schemas.LicenseExpired, ValidFrom: from, ValidTo: o.issued,
				UpdatedAt: o.issued.Add(time.Hour)})
		}
	}
}
