package registry

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// Registry rules, each raising registry_violation alerts. The rule name is
// part of the alert id and of the evidence.
const (
	// RuleInactiveLicense: rigs are active under a licence that is not in
	// force (missing, deleted, not active, outside its validity, or held by
	// another operator). One finding per licence and rig operator, entity
	// the licence, the rigs in its evidence. Critical.
	RuleInactiveLicense = "inactive_license"
	// RuleDuplicateSerial: two or more active rigs carry one serial. One
	// finding per serial, entity the newest registration (the one to
	// doubt), the others in its evidence. Warning.
	RuleDuplicateSerial = "duplicate_serial"
	// RuleRatedPower: a rig's declared rated power is below MinPowerFactor or
	// above MaxPowerFactor times its model's catalogue power. Warning.
	RuleRatedPower = "rated_power"
	// RuleSiteOverLicense: the active rigs of one site under one licence
	// exceed the licence's licensed capacity. Critical.
	RuleSiteOverLicense = "site_over_license"
	// RuleLicenseOverCapacity: all active rigs under one licence together
	// exceed its licensed capacity. Critical.
	RuleLicenseOverCapacity = "license_over_capacity"
)

// span is a half-open interval of Unix nanoseconds.
type span struct{ from, to int64 }

// appendSpan adds [from, to) to spans sorted by time, merging it with the
// last span if they touch.
func appendSpan(spans []span, from, to int64) []span {
	if from >= to {
		return spans
	}
	if n := len(spans); n > 0 && spans[n-1].to >= from {
		spans[n-1].to = max(spans[n-1].to, to)
		return spans
	}
	return append(spans, span{from, to})
}

// violation is one finding over all time: when it held, and how to describe
// it at an instant when it held.
type violation struct {
	id       string
	severity string
	spans    []span
	alert    func(at int64) schemas.Alert
}

// Check returns the registry_violation alerts that hold at instant t. Each
// alert's WindowStart and DetectedAt are when the violation began (it has
// held without a break since), WindowEnd is t. A clean registry returns
// none. Alerts are ordered critical first, then by score, highest first.
func (ix *Index) Check(t time.Time) []schemas.Alert {
	at := nanos(t)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []schemas.Alert
	for _, v := range ix.findings() {
		for _, s := range v.spans {
			if s.from <= at && at < s.to {
				a := ix.finish(&v, at, s.from, s.from)
				a.WindowEnd = t
				out = append(out, a)
				break
			}
		}
	}
	sortAlerts(out)
	return out
}

// CheckWindow returns the registry_violation alerts that held at any time
// in [from, to): one alert per finding, WindowStart and WindowEnd the first
// and last instants it held within the window, DetectedAt when the first of
// those episodes began (possibly before from), and the figures as they
// stood at the end of the last episode.
func (ix *Index) CheckWindow(from, to time.Time) []schemas.Alert {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.checkWindow(ix.findings(), nanos(from), nanos(to))
}

// checkWindow is CheckWindow over the findings vs, which must hold those
// of violations(until) for some until >= e (their spans may run on past
// e). The caller holds the read lock.
func (ix *Index) checkWindow(vs []violation, f, e int64) []schemas.Alert {
	var out []schemas.Alert
	for _, v := range vs {
		var first, last span
		episodes := 0
		for _, s := range v.spans {
			c := span{max(s.from, f), min(s.to, e)}
			if c.from >= c.to {
				continue
			}
			if episodes == 0 {
				first = s
				first.from = c.from
			}
			last = c
			episodes++
		}
		if episodes == 0 {
			continue
		}
		a := ix.finish(&v, last.to-1, first.from, detectedAt(v.spans, first.from))
		a.WindowEnd = timeOf(last.to)
		if episodes > 1 {
			a.Evidence["episodes"] = episodes
		}
		out = append(out, a)
	}
	sortAlerts(out)
	return out
}

// detectedAt returns the start of the span that holds at.
func detectedAt(spans []span, at int64) int64 {
	for _, s := range spans {
		if s.from <= at && at < s.to {
			return s.from
		}
	}
	return at
}

func (ix *Index) finish(v *violation, at, windowStart, detected int64) schemas.Alert {
	a := v.alert(at)
	a.AlertID = v.id
	a.Kind = schemas.KindRegistryViolation
	a.Severity = v.severity
	a.Status = schemas.StatusOpen
	a.WindowStart = timeOf(windowStart)
	a.DetectedAt = timeOf(detected)
	return a
}

var severityRank = map[string]int{schemas.SeverityCritical: 0, schemas.SeverityWarning: 1, schemas.SeverityInfo: 2}

func sortAlerts(as []schemas.Alert) {
	slices.SortFunc(as, func(a, b schemas.Alert) int {
		if c := cmp.Compare(severityRank[a.Severity], severityRank[b.Severity]); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return strings.Compare(a.AlertID, b.AlertID)
	})
}

// findings returns every finding over all time, violations(maxTime):
// computed again only after a rig or licence record is stored, so that a
// check every hour costs what the findings it reports cost, not the whole
// registry's history. A finding's spans up to any instant are those
// violations would find stopping there, cut at it: whether a rule holds at
// t depends only on the records in effect at t, and a span that runs on
// past it is cut (Check and CheckWindow look only before their end). The
// alerts are built when asked for, from the records then in effect. The
// caller holds the read lock.
func (ix *Index) findings() []violation {
	ix.foundMu.Lock()
	defer ix.foundMu.Unlock()
	if !ix.foundOK || ix.foundAt != ix.findingChanges {
		ix.found, ix.foundAt, ix.foundOK = ix.violations(maxTime), ix.findingChanges, true
	}
	return ix.found
}

// violations evaluates every rule from the beginning of time until (not
// including) until: what happens later cannot matter to a check that ends
// there. The caller holds the read lock.
//
// Findings are grouped the way an inspector acts on them: one per licence
// (and operator) whose rigs run while it is not in force, one per
// duplicated serial, one per rig whose declared power is off its model,
// one per licence and per site over licensed capacity. A revoked licence
// with 900 rigs is one case to pursue, not 900.
func (ix *Index) violations(until int64) []violation {
	var out []violation
	byLic := map[licOp]*licFinding{}
	for r := range ix.rigs {
		out = ix.rigViolations(out, uint32(r), until, byLic)
	}
	out = ix.licenseViolations(out, byLic)
	out = ix.serialViolations(out, until)
	out = ix.capacityViolations(out, until)
	return out
}

// licOp is a licence as claimed by one operator's rigs: rigs of another
// operator naming the licence are a separate finding.
type licOp struct{ lic, op uint32 }

// licFinding collects the rigs that ran under a licence while it was not in
// force, and when.
type licFinding struct {
	rigs  []uint32
	spans []span
}

// rigViolations adds the rated-power finding of rig r and records the spans
// in which r was active under a licence not in force in byLic.
func (ix *Index) rigViolations(out []violation, r uint32, until int64, byLic map[licOp]*licFinding) []violation {
	vs := ix.rigs[r]
	var powerSpans []span
	var lastKey *licFinding
	eachState(vs, minTime, until, func(i int, f, e int64) {
		if i < 0 || !ix.rigActive(&vs[i]) {
			return
		}
		v := &vs[i]
		lvs := ix.licenses[v.lic]
		key := licOp{v.lic, v.op}
		add := func(lf, le int64) {
			if lf >= le {
				return
			}
			lf2 := byLic[key]
			if lf2 == nil {
				lf2 = &licFinding{}
				byLic[key] = lf2
			}
			if lastKey != lf2 {
				lf2.rigs = append(lf2.rigs, r)
				lastKey = lf2
			}
			lf2.spans = append(lf2.spans, span{lf, le})
		}
		eachState(lvs, f, e, func(k int, lf, le int64) {
			if k < 0 || lvs[k].deleted || !lvs[k].active || lvs[k].op != v.op {
				add(lf, le)
				return
			}
			add(lf, min(le, lvs[k].from))
			add(max(lf, lvs[k].to), le)
		})
		if pr := ix.modelPower[v.model]; pr.known && ix.powerOff(v.powerW, pr) {
			powerSpans = appendSpan(powerSpans, f, e)
		}
	})
	if len(powerSpans) > 0 {
		rigID := ix.rigIDs.s[r]
		out = append(out, violation{
			id:       schemas.AlertID(schemas.KindRegistryViolation, RuleRatedPower, schemas.EntityRig, rigID),
			severity: schemas.SeverityWarning,
			spans:    powerSpans,
			alert:    func(at int64) schemas.Alert { return ix.ratedPowerAlert(r, at) },
		})
	}
	return out
}

// licenseViolations turns the collected rig spans into one finding per
// licence and operator.
func (ix *Index) licenseViolations(out []violation, byLic map[licOp]*licFinding) []violation {
	keys := make([]licOp, 0, len(byLic))
	for k := range byLic {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b licOp) int {
		if c := strings.Compare(ix.licenseIDs.s[a.lic], ix.licenseIDs.s[b.lic]); c != 0 {
			return c
		}
		return strings.Compare(ix.operators.s[a.op], ix.operators.s[b.op])
	})
	for _, k := range keys {
		f := byLic[k]
		slices.SortFunc(f.spans, func(a, b span) int { return cmp.Compare(a.from, b.from) })
		var spans []span
		for _, s := range f.spans {
			spans = appendSpan(spans, s.from, s.to)
		}
		rigs := slices.Compact(slices.Sorted(slices.Values(f.rigs)))
		slices.SortFunc(rigs, func(a, b uint32) int { return strings.Compare(ix.rigIDs.s[a], ix.rigIDs.s[b]) })
		out = append(out, violation{
			id:       schemas.AlertID(schemas.KindRegistryViolation, RuleInactiveLicense, schemas.EntityLicense, ix.licenseIDs.s[k.lic], ix.operators.s[k.op]),
			severity: schemas.SeverityCritical,
			spans:    spans,
			alert:    func(at int64) schemas.Alert { return ix.inactiveLicenseAlert(k, rigs, at) },
		})
	}
	return out
}

// MaxEvidenceIDs bounds the ids an alert lists in its evidence; the count
// beside them is always complete.
const MaxEvidenceIDs = 100

func (ix *Index) powerOff(w float64, pr powerRange) bool {
	return w < ix.cfg.MinPowerFactor*pr.minW || w > ix.cfg.MaxPowerFactor*pr.maxW
}

// rigAlert fills what every rig alert shares.
func (ix *Index) rigAlert(v *rigVer, at int64) schemas.Alert {
	a := schemas.Alert{
		EntityType: schemas.EntityRig,
		EntityID:   ix.rigIDs.s[v.rig],
		RigID:      ix.rigIDs.s[v.rig],
		SiteID:     ix.sites.s[v.site],
		OperatorID: ix.operators.s[v.op],
		LicenseID:  ix.licenseIDs.s[v.lic],
		Evidence: map[string]any{
			"serial":        ix.serials.s[v.serial],
			"model":         ix.models.s[v.model],
			"rated_power_w": v.powerW,
			"rig_status":    ix.labels.s[v.sts],
			"rig_record_at": timeOf(v.at),
		},
	}
	if o := ix.siteOblast(v.site, at); o < len(ix.oblasts.s) {
		a.Oblast = ix.oblasts.s[o]
	}
	return a
}

// licenseProblem says why the rig's licence is not in force at t, or "".
func (ix *Index) licenseProblem(v *rigVer, at int64) (string, *licVer) {
	l := ix.licState(v.lic, at)
	switch {
	case l == nil:
		return "has no licence record in force", nil
	case !l.active:
		return "is " + l.l.Status, l
	case l.op != v.op:
		return "belongs to operator " + ix.operators.s[l.op], l
	case at < l.from:
		return "is not valid until " + timeOf(l.from).Format(time.DateOnly), l
	case at >= l.to:
		return "expired on " + timeOf(l.to).Format(time.DateOnly), l
	}
	return "", l
}

// Scores of inactive-licence findings, by how plainly unlawful the running
// is; the MW running under the licence is added so bigger cases rank first
// within a band.
var inactiveLicenseScore = map[string]float64{
	schemas.LicenseRevoked: 3, "missing": 3, schemas.LicenseSuspended: 2.5,
	"other_operator": 2.5, schemas.LicenseExpired: 2, LicenseNotYetValid: 1.5,
}

func (ix *Index) inactiveLicenseAlert(k licOp, rigs []uint32, at int64) schemas.Alert {
	var (
		ids     []string
		n       int
		powerW  float64
		first   *rigVer
		sites   = map[string]int{}
		siteIDs []string
	)
	for _, r := range rigs {
		v := ix.rigState(r, at)
		if v == nil || !ix.rigActive(v) || v.lic != k.lic || v.op != k.op {
			continue
		}
		if p, _ := ix.licenseProblem(v, at); p == "" {
			continue
		}
		if first == nil {
			first = v
		}
		n++
		powerW += v.powerW
		if len(ids) < MaxEvidenceIDs {
			ids = append(ids, ix.rigIDs.s[r])
		}
		site := ix.sites.s[v.site]
		if _, ok := sites[site]; !ok {
			siteIDs = append(siteIDs, site)
		}
		sites[site]++
	}
	licID, opID := ix.licenseIDs.s[k.lic], ix.operators.s[k.op]
	a := schemas.Alert{EntityType: schemas.EntityLicense, EntityID: licID, LicenseID: licID, OperatorID: opID,
		Evidence: map[string]any{"rule": RuleInactiveLicense}}
	if first == nil { // cannot happen: the finding holds at at
		a.Summary = fmt.Sprintf("Rigs of operator %s are active under licence %s, which is not in force.", opID, licID)
		return a
	}
	problem, l := ix.licenseProblem(first, at)
	state := "missing"
	switch {
	case l == nil:
	case !l.active:
		state = l.l.Status
	case l.op != k.op:
		state = "other_operator"
	case at < l.from:
		state = LicenseNotYetValid
	default:
		state = schemas.LicenseExpired
	}
	mw := powerW / 1e6
	base, ok := inactiveLicenseScore[state]
	if !ok {
		base = 2 // an unforeseen licence status
	}
	// The band says how plainly unlawful the running is; the MW run under
	// it ranks licences within a band.
	a.Score = base + mw
	slices.Sort(siteIDs)
	if len(siteIDs) == 1 {
		a.SiteID = siteIDs[0]
		if o := ix.siteOblast(first.site, at); o < len(ix.oblasts.s) {
			a.Oblast = ix.oblasts.s[o]
		}
	}
	bySite := make([]map[string]any, 0, min(len(siteIDs), MaxEvidenceIDs))
	for _, s := range siteIDs[:min(len(siteIDs), MaxEvidenceIDs)] {
		bySite = append(bySite, map[string]any{"site_id": s, "active_rigs": sites[s]})
	}
	ev := a.Evidence
	ev["license_state"] = state
	ev["active_rigs"] = n
	ev["rig_ids"] = ids
	ev["rig_ids_truncated"] = n > len(ids)
	ev["registered_mw"] = mw
	ev["sites"] = bySite
	ev["site_count"] = len(siteIDs)
	if l != nil {
		ev["license_status"] = l.l.Status
		ev["license_operator_id"] = l.l.OperatorID
		ev["license_valid_from"] = l.l.ValidFrom
		ev["license_valid_to"] = l.l.ValidTo
	}
	where := fmt.Sprintf("at %d sites", len(siteIDs))
	if len(siteIDs) == 1 {
		where = "at site " + siteIDs[0]
	}
	rigWord := "rigs"
	if n == 1 {
		rigWord = "rig"
	}
	a.Summary = fmt.Sprintf("Operator %s runs %d active registered %s (%.2f MW) %s under licence %s, which %s: stop the rigs or restore the licence.",
		opID, n, rigWord, mw, where, licID, problem)
	return a
}

func (ix *Index) ratedPowerAlert(r uint32, at int64) schemas.Alert {
	v := ix.rigState(r, at)
	a := ix.rigAlert(v, at)
	pr := ix.modelPower[v.model]
	ratio := v.powerW / pr.catalogueW
	a.Score = max(ratio, 1/ratio) / 2
	a.Evidence["rule"] = RuleRatedPower
	a.Evidence["catalogue_model"] = pr.name
	a.Evidence["catalogue_power_w"] = pr.catalogueW
	a.Evidence["allowed_min_w"] = ix.cfg.MinPowerFactor * pr.minW
	a.Evidence["allowed_max_w"] = ix.cfg.MaxPowerFactor * pr.maxW
	a.Evidence["ratio"] = ratio
	a.Summary = fmt.Sprintf("Rig %s of operator %s at site %s declares %.0f W for a %s, whose catalogue power is %.0f W (%.2f×): check the model or correct the declared power.",
		a.RigID, a.OperatorID, a.SiteID, v.powerW, pr.name, pr.catalogueW, ratio)
	return a
}

// serialViolations finds serials carried by two or more active rigs at once.
func (ix *Index) serialViolations(out []violation, until int64) []violation {
	var serials []uint32
	for _, m := range ix.serialMore {
		serials = append(serials, m[0])
	}
	slices.Sort(serials)
	serials = slices.Compact(serials)
	for _, s := range serials {
		rigs := ix.rigsWithSerial(s)
		var bps []int64
		for _, r := range rigs {
			for _, v := range ix.rigs[r] {
				if v.at < until {
					bps = append(bps, v.at)
				}
			}
		}
		slices.Sort(bps)
		bps = slices.Compact(bps)
		var spans []span
		for k, b := range bps {
			if len(ix.activeWithSerial(rigs, s, b)) < 2 {
				continue
			}
			end := until
			if k+1 < len(bps) {
				end = bps[k+1]
			}
			spans = appendSpan(spans, b, end)
		}
		if len(spans) == 0 {
			continue
		}
		serial := ix.serials.s[s]
		out = append(out, violation{
			id:       schemas.AlertID(schemas.KindRegistryViolation, RuleDuplicateSerial, "serial", serial),
			severity: schemas.SeverityWarning,
			spans:    spans,
			alert:    func(at int64) schemas.Alert { return ix.duplicateSerialAlert(rigs, s, at) },
		})
	}
	return out
}

// activeWithSerial returns the rigs active at t with serial s, by rig id.
func (ix *Index) activeWithSerial(rigs []uint32, s uint32, at int64) []*rigVer {
	var out []*rigVer
	for _, r := range rigs {
		if v := ix.rigState(r, at); v != nil && ix.rigActive(v) && v.serial == s {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b *rigVer) int { return strings.Compare(ix.rigIDs.s[a.rig], ix.rigIDs.s[b.rig]) })
	return out
}

// registeredWith returns when rig r first carried serial s while active:
// its registration under that serial.
func (ix *Index) registeredWith(r, s uint32) int64 {
	for i := range ix.rigs[r] {
		if v := &ix.rigs[r][i]; ix.rigActive(v) && v.serial == s {
			return v.at
		}
	}
	return maxTime
}

func (ix *Index) duplicateSerialAlert(rigs []uint32, s uint32, at int64) schemas.Alert {
	vs := ix.activeWithSerial(rigs, s, at)
	// The newest registration is the one to doubt: the serial was already
	// in use when it was registered.
	newest := 0
	for i, v := range vs {
		if ix.registeredWith(v.rig, s) >= ix.registeredWith(vs[newest].rig, s) {
			newest = i
		}
	}
	a := ix.rigAlert(vs[newest], at)
	ids := make([]string, 0, min(len(vs), MaxEvidenceIDs))
	var others []string
	var where []string
	for i, v := range vs {
		id := ix.rigIDs.s[v.rig]
		if len(ids) < MaxEvidenceIDs {
			ids = append(ids, id)
		}
		if i != newest && len(others) < MaxEvidenceIDs {
			others = append(others, id)
			if len(where) < 5 {
				where = append(where, fmt.Sprintf("%s (operator %s, site %s, since %s)", id, ix.operators.s[v.op], ix.sites.s[v.site],
					timeOf(ix.registeredWith(v.rig, s)).Format(time.DateOnly)))
			}
		}
	}
	if len(vs)-1 > len(where) {
		where = append(where, fmt.Sprintf("and %d more", len(vs)-1-len(where)))
	}
	a.Score = float64(len(vs)) / 2
	a.Evidence["rule"] = RuleDuplicateSerial
	a.Evidence["rig_ids"] = ids
	a.Evidence["other_rig_ids"] = others
	a.Evidence["active_rigs"] = len(vs)
	a.Evidence["registered_at"] = timeOf(ix.registeredWith(vs[newest].rig, s))
	a.Summary = fmt.Sprintf("Rig %s (operator %s, site %s) was registered on %s with serial %s, already registered to active rig %s: find the physical machine and decommission the false registration.",
		a.RigID, a.OperatorID, a.SiteID, timeOf(ix.registeredWith(vs[newest].rig, s)).Format(time.DateOnly), ix.serials.s[s], strings.Join(where, ", "))
	return a
}

// capacityViolations compares registered capacity with licensed capacity,
// per licence and per site under each licence.
func (ix *Index) capacityViolations(out []violation, until int64) []violation {
	for l := range ix.licGroups {
		gs := ix.licGroups[l]
		if len(gs) == 0 || !ix.everCapped(uint32(l)) {
			continue
		}
		out = ix.capacityViolation(out, uint32(l), gs, "", RuleLicenseOverCapacity, until)
		bySite := map[uint32][]uint32{}
		var sites []uint32
		for _, g := range gs {
			s := ix.groups[g].site
			if _, ok := bySite[s]; !ok {
				sites = append(sites, s)
			}
			bySite[s] = append(bySite[s], g)
		}
		slices.Sort(sites)
		for _, s := range sites {
			out = ix.capacityViolation(out, uint32(l), bySite[s], ix.sites.s[s], RuleSiteOverLicense, until)
		}
	}
	return out
}

func (ix *Index) everCapped(l uint32) bool {
	for _, v := range ix.licenses[l] {
		if v.hasCap && !v.deleted {
			return true
		}
	}
	return false
}

// sumGroups returns the sum of the groups' capacity series.
func (ix *Index) sumGroups(gs []uint32) *series {
	if len(gs) == 1 {
		return &ix.groups[gs[0]].cap
	}
	var ds []step // deltas
	for _, g := range gs {
		var prev step
		for _, st := range ix.groups[g].cap.steps {
			ds = append(ds, step{at: st.at, mw: st.mw - prev.mw, n: st.n - prev.n})
			prev = st
		}
	}
	slices.SortStableFunc(ds, func(a, b step) int { return cmp.Compare(a.at, b.at) })
	sum := &series{}
	for _, d := range ds {
		sum.push(d.at, d.mw, d.n)
	}
	return sum
}

func (ix *Index) capacityViolation(out []violation, l uint32, gs []uint32, siteID, rule string, until int64) []violation {
	sum := ix.sumGroups(gs)
	bps := sum.breakpoints(nil, minTime, until)
	for _, v := range ix.licenses[l] {
		if v.at < until {
			bps = append(bps, v.at)
		}
	}
	slices.Sort(bps)
	bps = slices.Compact(bps)
	var spans []span
	for k, b := range bps {
		lv := ix.licState(l, b)
		if lv == nil || !lv.hasCap {
			continue
		}
		if mw, _ := sum.valueAt(b); mw <= lv.capMW {
			continue
		}
		end := until
		if k+1 < len(bps) {
			end = bps[k+1]
		}
		spans = appendSpan(spans, b, end)
	}
	if len(spans) == 0 {
		return out
	}
	licID := ix.licenseIDs.s[l]
	return append(out, violation{
		id:       schemas.AlertID(schemas.KindRegistryViolation, rule, schemas.EntityLicense, licID, siteID),
		severity: schemas.SeverityCritical,
		spans:    spans,
		alert:    func(at int64) schemas.Alert { return ix.capacityAlert(l, sum, siteID, rule, at) },
	})
}

func (ix *Index) capacityAlert(l uint32, sum *series, siteID, rule string, at int64) schemas.Alert {
	lv := ix.licState(l, at)
	mw, n := sum.valueAt(at)
	regKW, licKW := float64(mw)/1e6, float64(lv.capMW)/1e6
	a := schemas.Alert{
		EntityType: schemas.EntityLicense,
		EntityID:   ix.licenseIDs.s[l],
		LicenseID:  ix.licenseIDs.s[l],
		OperatorID: lv.l.OperatorID,
		SiteID:     siteID,
		Evidence: map[string]any{
			"rule":                 rule,
			"registered_kw":        regKW,
			"licensed_capacity_kw": licKW,
			"excess_kw":            regKW - licKW,
			"active_rigs":          n,
			"license_status":       lv.l.Status,
		},
	}
	if licKW > 0 {
		a.Score = regKW / licKW
		a.Evidence["ratio"] = a.Score
	} else {
		a.Score = 1 + regKW/1000 // a zero licence: every kW is over
	}
	if siteID != "" {
		if s, ok := ix.sites.idx[siteID]; ok {
			if o := ix.siteOblast(s, at); o < len(ix.oblasts.s) {
				a.Oblast = ix.oblasts.s[o]
			}
		}
		a.Summary = fmt.Sprintf("Site %s of operator %s has %d active registered rigs drawing %.0f kW under licence %s, above its licensed capacity of %.0f kW by %.0f kW: deregister or stop the excess rigs.",
			siteID, a.OperatorID, n, regKW, a.LicenseID, licKW, regKW-licKW)
	} else {
		a.Summary = fmt.Sprintf("Operator %s has %d active registered rigs drawing %.0f kW under licence %s, above its licensed capacity of %.0f kW by %.0f kW: deregister or stop the excess rigs.",
			a.OperatorID, n, regKW, a.LicenseID, licKW, regKW-licKW)
	}
	return a
}
