package registry

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// Step is one piece of a piecewise-constant capacity: from At until the next
// step, the active registered rigs draw CapacityW watts in total.
type Step struct {
	At        time.Time `json:"at"`
	CapacityW float64   `json:"capacity_w"`
	Rigs      int       `json:"rigs"`
}

// SiteCapacityW returns the registered capacity of a site at instant t: the
// sum of rated_power_w of the rigs whose state at t is active at that site.
// An unknown site has 0. It does not allocate.
func (ix *Index) SiteCapacityW(siteID string, t time.Time) float64 {
	at := nanos(t)
	ix.mu.RLock()
	s, ok := ix.sites.idx[siteID]
	var mw int64
	if ok {
		mw, _ = ix.siteCap[s].valueAt(at)
	}
	ix.mu.RUnlock()
	return float64(mw) / 1000
}

// CapacityChanges returns a site's capacity over [from, to): a first step at
// from with the capacity then, and one step per change inside the window.
func (ix *Index) CapacityChanges(siteID string, from, to time.Time) []Step {
	return ix.AppendCapacityChanges(nil, siteID, from, to)
}

// AppendCapacityChanges is CapacityChanges appending to dst, for callers
// that reuse a buffer across windows.
func (ix *Index) AppendCapacityChanges(dst []Step, siteID string, from, to time.Time) []Step {
	f, e := nanos(from), nanos(to)
	if f >= e {
		return dst
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s, ok := ix.sites.idx[siteID]
	if !ok || len(ix.siteCap[s].steps) == 0 {
		return append(dst, Step{At: from})
	}
	sr := &ix.siteCap[s]
	mw, n := sr.valueAt(f)
	dst = append(dst, Step{At: from, CapacityW: float64(mw) / 1000, Rigs: int(n)})
	last := mw
	for _, st := range sr.steps[versionAtSteps(sr.steps, f)+1:] {
		if st.at >= e {
			break
		}
		if st.mw == last {
			continue // only the rig count changed
		}
		last = st.mw
		dst = append(dst, Step{At: timeOf(st.at), CapacityW: float64(st.mw) / 1000, Rigs: int(st.n)})
	}
	return dst
}

// versionAtSteps returns the index of the last step at or before t, or -1.
func versionAtSteps(st []step, t int64) int {
	lo, hi := 0, len(st)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if st[m].at <= t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

func (ix *Index) rigOf(v *rigVer) schemas.Rig {
	r := schemas.Rig{
		RigID:       ix.rigIDs.s[v.rig],
		Serial:      ix.serials.s[v.serial],
		Model:       ix.models.s[v.model],
		RatedPowerW: v.powerW,
		OperatorID:  ix.operators.s[v.op],
		LicenseID:   ix.licenseIDs.s[v.lic],
		SiteID:      ix.sites.s[v.site],
		Status:      ix.labels.s[v.sts],
		UpdatedAt:   timeOf(v.at),
		Meta:        schemas.Meta{Version: v.ver, Deleted: v.deleted},
	}
	if !math.IsNaN(float64(v.hashrate)) {
		// the shortest float32 spelling gives back the declared decimal
		h, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v.hashrate), 'g', -1, 32), 64)
		r.HashrateTHs = &h
	}
	return r
}

func licenseOf(v *licVer) schemas.License {
	l := v.l
	if l.LicensedCapacityKW != nil {
		kw := *l.LicensedCapacityKW
		l.LicensedCapacityKW = &kw
	}
	return l
}

func (ix *Index) meterOf(v *meterVer) schemas.Meter {
	return schemas.Meter{
		MeterID:   ix.meterIDs.s[v.meter],
		FeederID:  ix.feeders.s[v.feeder],
		Role:      ix.labels.s[v.role],
		Class:     ix.labels.s[v.class],
		SiteID:    ix.sites.s[v.site],
		Oblast:    ix.oblasts.s[v.oblast],
		UpdatedAt: timeOf(v.at),
		Meta:      schemas.Meta{Version: v.ver, Deleted: v.deleted},
	}
}

// rigState returns the version of rig r in effect at t, or nil if the rig
// does not exist then (never registered, or tombstoned).
func (ix *Index) rigState(r uint32, t int64) *rigVer {
	vs := ix.rigs[r]
	i := versionAt(vs, t)
	if i < 0 || vs[i].deleted {
		return nil
	}
	return &vs[i]
}

func (ix *Index) licState(l uint32, t int64) *licVer {
	if int(l) >= len(ix.licenses) {
		return nil
	}
	vs := ix.licenses[l]
	i := versionAt(vs, t)
	if i < 0 || vs[i].deleted {
		return nil
	}
	return &vs[i]
}

func (ix *Index) meterState(m uint32, t int64) *meterVer {
	vs := ix.meters[m]
	i := versionAt(vs, t)
	if i < 0 || vs[i].deleted {
		return nil
	}
	return &vs[i]
}

// RigAt returns the rig as registered at t (any status), and false if it
// did not exist then.
func (ix *Index) RigAt(rigID string, t time.Time) (schemas.Rig, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	r, ok := ix.rigIDs.idx[rigID]
	if !ok || int(r) >= len(ix.rigs) {
		return schemas.Rig{}, false
	}
	v := ix.rigState(r, nanos(t))
	if v == nil {
		return schemas.Rig{}, false
	}
	return ix.rigOf(v), true
}

// RigHistory returns every stored version of a rig, tombstones included,
// oldest first.
func (ix *Index) RigHistory(rigID string) []schemas.Rig {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	r, ok := ix.rigIDs.idx[rigID]
	if !ok || int(r) >= len(ix.rigs) {
		return nil
	}
	return ix.appendHistory(nil, r, func(*rigVer) bool { return true })
}

func (ix *Index) appendHistory(dst []schemas.Rig, r uint32, keep func(*rigVer) bool) []schemas.Rig {
	for i := range ix.rigs[r] {
		if v := &ix.rigs[r][i]; keep(v) {
			dst = append(dst, ix.rigOf(v))
		}
	}
	return dst
}

func sortRigHistory(rs []schemas.Rig) {
	slices.SortStableFunc(rs, func(a, b schemas.Rig) int {
		if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.RigID, b.RigID)
	})
}

// rigsWithSerial returns every rig that has ever carried the serial.
func (ix *Index) rigsWithSerial(s uint32) []uint32 {
	if int(s) >= len(ix.serialRigs) || ix.serialRigs[s] < 0 {
		return nil
	}
	out := []uint32{uint32(ix.serialRigs[s])}
	for _, m := range ix.serialMore {
		if m[0] == s {
			out = append(out, m[1])
		}
	}
	return out
}

// RigBySerial returns every stored version, of any rig, that carries the
// serial, oldest first.
func (ix *Index) RigBySerial(serial string) []schemas.Rig {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s, ok := ix.serials.idx[serial]
	if !ok {
		return nil
	}
	var out []schemas.Rig
	for _, r := range ix.rigsWithSerial(s) {
		out = ix.appendHistory(out, r, func(v *rigVer) bool { return !v.deleted && v.serial == s })
	}
	sortRigHistory(out)
	return out
}

// SiteHistory returns the full history (every version, tombstones
// included, oldest first) of every rig that has ever been at the site, so
// arrivals, departures and status changes can all be read from it.
func (ix *Index) SiteHistory(siteID string) []schemas.Rig {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s, ok := ix.sites.idx[siteID]
	if !ok {
		return nil
	}
	var out []schemas.Rig
	for _, r := range ix.siteRigs[s] {
		out = ix.appendHistory(out, r, func(*rigVer) bool { return true })
	}
	sortRigHistory(out)
	return out
}

// LicenseAt returns the licence record in effect at t, whatever its status
// and validity, and false if there was none.
func (ix *Index) LicenseAt(licenseID string, t time.Time) (schemas.License, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	l, ok := ix.licenseIDs.idx[licenseID]
	if !ok {
		return schemas.License{}, false
	}
	v := ix.licState(l, nanos(t))
	if v == nil {
		return schemas.License{}, false
	}
	return licenseOf(v), true
}

// LicenseValid reports whether a licence is in force at t: its record then
// has status active and valid_from <= t < valid_to.
func (ix *Index) LicenseValid(licenseID string, t time.Time) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	l, ok := ix.licenseIDs.idx[licenseID]
	if !ok {
		return false
	}
	at := nanos(t)
	return licValidAt(ix.licState(l, at), at)
}

func licValidAt(v *licVer, at int64) bool {
	return v != nil && v.active && v.from <= at && at < v.to
}

// OperatorLicenses returns the licences held by an operator at t (the
// records in effect then, any status), ordered by licence id.
func (ix *Index) OperatorLicenses(operatorID string, t time.Time) []schemas.License {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	op, ok := ix.operators.idx[operatorID]
	if !ok || int(op) >= len(ix.opLicenses) {
		return nil
	}
	at := nanos(t)
	var out []schemas.License
	for _, l := range ix.opLicenses[op] {
		if v := ix.licState(l, at); v != nil && v.op == op {
			out = append(out, licenseOf(v))
		}
	}
	slices.SortFunc(out, func(a, b schemas.License) int { return strings.Compare(a.LicenseID, b.LicenseID) })
	return out
}

// MeterAt returns the meter as it stood at t, and false if it did not exist.
func (ix *Index) MeterAt(meterID string, t time.Time) (schemas.Meter, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	m, ok := ix.meterIDs.idx[meterID]
	if !ok || int(m) >= len(ix.meters) {
		return schemas.Meter{}, false
	}
	v := ix.meterState(m, nanos(t))
	if v == nil {
		return schemas.Meter{}, false
	}
	return ix.meterOf(v), true
}

// UnknownReadings counts the readings whose meter did not exist at the
// reading's time: MeterAt's answer for a batch, under one lock and without
// building a meter (ingest asks it of every reading it stores).
func (ix *Index) UnknownReadings(rs []schemas.Reading) int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := 0
	last, lastM, lastOK := "", uint32(0), false
	for i := range rs {
		id := rs[i].MeterID
		if id != last || i == 0 {
			m, ok := ix.meterIDs.idx[id]
			last, lastM, lastOK = id, m, ok && int(m) < len(ix.meters)
		}
		if !lastOK || ix.meterState(lastM, nanos(rs[i].TS)) == nil {
			n++
		}
	}
	return n
}

// FeederMeters returns the meters on a feeder at t, ordered by meter id.
func (ix *Index) FeederMeters(feederID string, t time.Time) []schemas.Meter {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	f, ok := ix.feeders.idx[feederID]
	if !ok || int(f) >= len(ix.feederMeters) {
		return nil
	}
	return ix.metersWhere(ix.feederMeters[f], nanos(t), func(v *meterVer) bool { return v.feeder == f })
}

// FeederSummary is what the feeder ranking needs of a feeder's meters at a
// time, without building them: how many head meters and other meters it
// has, the class of its first head meter that names one and the oblast of
// its first meter that names one (by meter id).
type FeederSummary struct {
	HeadMeters, Meters int
	Class, Oblast      string
}

// FeederSummaryAt returns feeder feederID's summary at t: what
// FeederMeters would give, counted, at a fraction of the cost (the
// national ranking walks 20,000 feeders and a million meters).
func (ix *Index) FeederSummaryAt(feederID string, t time.Time) FeederSummary {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out FeederSummary
	f, ok := ix.feeders.idx[feederID]
	if !ok || int(f) >= len(ix.feederMeters) {
		return out
	}
	at := nanos(t)
	classOf, oblastOf := "", "" // the meter ids the class and the oblast came from
	for _, m := range ix.feederMeters[f] {
		v := ix.meterState(m, at)
		if v == nil || v.feeder != f {
			continue
		}
		id := ix.meterIDs.s[v.meter]
		if o := ix.oblasts.s[v.oblast]; o != "" && (oblastOf == "" || id < oblastOf) {
			oblastOf, out.Oblast = id, o
		}
		if ix.labels.s[v.role] != schemas.RoleFeederHead {
			out.Meters++
			continue
		}
		out.HeadMeters++
		if c := ix.labels.s[v.class]; c != "" && (classOf == "" || id < classOf) {
			classOf, out.Class = id, c
		}
	}
	return out
}

// SiteMeters returns the meters linked to a site at t, ordered by meter id.
func (ix *Index) SiteMeters(siteID string, t time.Time) []schemas.Meter {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s, ok := ix.sites.idx[siteID]
	if !ok {
		return nil
	}
	return ix.metersWhere(ix.siteMeters[s], nanos(t), func(v *meterVer) bool { return v.site == s })
}

func (ix *Index) metersWhere(ids []uint32, at int64, keep func(*meterVer) bool) []schemas.Meter {
	var out []schemas.Meter
	for _, m := range ids {
		if v := ix.meterState(m, at); v != nil && keep(v) {
			out = append(out, ix.meterOf(v))
		}
	}
	slices.SortFunc(out, func(a, b schemas.Meter) int { return strings.Compare(a.MeterID, b.MeterID) })
	return out
}

// Feeders returns the ids of every feeder any meter has been on, sorted.
func (ix *Index) Feeders() []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []string
	for f, ms := range ix.feederMeters {
		if len(ms) > 0 {
			out = append(out, ix.feeders.s[f])
		}
	}
	slices.Sort(out)
	return out
}

// Sites returns the ids of every site any rig or meter has been linked to,
// sorted.
func (ix *Index) Sites() []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []string
	for s := range ix.siteRigs {
		if len(ix.siteRigs[s]) > 0 || len(ix.siteMeters[s]) > 0 {
			out = append(out, ix.sites.s[s])
		}
	}
	slices.Sort(out)
	return out
}

// Fleet is the active registered equipment of a site or an operator.
type Fleet struct {
	Machines int     `json:"machines"`
	TotalW   float64 `json:"total_w"`
}

// CalcInput returns calculator input for the fleet; HoursPerDay,
// DaysPerMonth and the tariff are the caller's.
func (f Fleet) CalcInput(hoursPerDay float64, daysPerMonth int, tariffKZTPerKWh float64) CalcInput {
	in := CalcInput{Machines: f.Machines, TotalW: f.TotalW, HoursPerDay: hoursPerDay,
		DaysPerMonth: daysPerMonth, TariffKZTPerKWh: tariffKZTPerKWh}
	if f.Machines > 0 {
		in.WattsPerMachine = f.TotalW / float64(f.Machines)
	}
	return in
}

// SiteFleet returns the active registered rigs of a site at t.
func (ix *Index) SiteFleet(siteID string, t time.Time) Fleet {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s, ok := ix.sites.idx[siteID]
	if !ok {
		return Fleet{}
	}
	mw, n := ix.siteCap[s].valueAt(nanos(t))
	return Fleet{Machines: int(n), TotalW: float64(mw) / 1000}
}

// OperatorFleet returns the active registered rigs of an operator (by the
// rigs' operator_id) at t.
func (ix *Index) OperatorFleet(operatorID string, t time.Time) Fleet {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	op, ok := ix.operators.idx[operatorID]
	if !ok || int(op) >= len(ix.opGroups) {
		return Fleet{}
	}
	at := nanos(t)
	var mw, n int64
	for _, g := range ix.opGroups[op] {
		gm, gn := ix.groups[g].cap.valueAt(at)
		mw, n = mw+gm, n+gn
	}
	return Fleet{Machines: int(n), TotalW: float64(mw) / 1000}
}

// Changes returns how many meter records and how many rig records have
// changed the index so far: a reader that keeps figures derived from it
// between calls (the detector's feeder memberships and site capacities)
// derives them again only when these move.
func (ix *Index) Changes() (meters, rigs uint64) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.meterChanges, ix.rigChanges
}

// NextMeterChange returns the earliest updated_at of a meter record after
// t, or the zero time when there is none: what MeterAt answers at t holds
// until then, unless records arrive (Changes).
func (ix *Index) NextMeterChange(t time.Time) time.Time {
	ix.mu.RLock()
	if ix.meterTimesSorted {
		defer ix.mu.RUnlock()
		return ix.nextMeterChange(nanos(t))
	}
	ix.mu.RUnlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.meterTimesSorted {
		slices.Sort(ix.meterTimes)
		ix.meterTimes = slices.Compact(ix.meterTimes)
		ix.meterTimesSorted = true
	}
	return ix.nextMeterChange(nanos(t))
}

func (ix *Index) nextMeterChange(at int64) time.Time {
	i, found := slices.BinarySearch(ix.meterTimes, at)
	if found {
		i++
	}
	if i >= len(ix.meterTimes) {
		return time.Time{}
	}
	return timeOf(ix.meterTimes[i])
}

// OperatorSites returns the sites at which the operator has ever had a rig
// registered, sorted: an operator page's sites without walking every
// site's history.
func (ix *Index) OperatorSites(operatorID string) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	op, ok := ix.operators.idx[operatorID]
	if !ok || int(op) >= len(ix.opGroups) {
		return nil
	}
	seen := map[uint32]bool{}
	var out []string
	for _, g := range ix.opGroups[op] {
		if s := ix.groups[g].site; !seen[s] {
			seen[s] = true
			out = append(out, ix.sites.s[s])
		}
	}
	slices.Sort(out)
	return out
}
