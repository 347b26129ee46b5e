package registry

import (
	"fmt"
	"math"
	"slices"

	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/schemas"
)

// rigVer is one stored version of a rig, its strings interned.
type rigVer struct {
	stamp
	powerW                                 float64
	hashrate                               float32 // NaN when absent
	rig, serial, model, op, lic, site, sts uint32
	grp                                    uint32 // capacity group of (site, lic, op)
	deleted                                bool
}

func (ix *Index) rigActive(v *rigVer) bool { return !v.deleted && v.sts == ix.activeLabel }

// milliwatts is the rig's contribution to capacity series.
func (v *rigVer) milliwatts() int64 { return int64(math.Round(v.powerW * 1000)) }

// licVer is one stored version of a licence.
type licVer struct {
	stamp
	l        schemas.License
	from, to int64
	capMW    int64
	hasCap   bool
	active   bool
	lic, op  uint32
	deleted  bool
}

// meterVer is one stored version of a meter.
type meterVer struct {
	stamp
	meter, feeder, site, oblast, role, class uint32
	deleted                                  bool
}

// ApplyRig stores one rig record (or tombstone). Records may arrive in any
// order; a redelivery of a stored version (same updated_at and
// Meta.Version) changes nothing, the first delivery is kept. It returns an
// error wrapping ErrInvalidInput, and stores nothing, if the record has no
// rig_id or updated_at, or a live record has no valid rated power.
func (ix *Index) ApplyRig(r schemas.Rig) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.findingChanges++
	return ix.applyRig(&r)
}

// ApplyRigs stores a batch of rig records under one lock. A site that
// receives many records relative to the rigs it already has gets its
// capacity rebuilt once at the end of the batch instead of record by record,
// which keeps a bulk load fast in any arrival order. Invalid records are
// skipped and summarised in the returned error.
func (ix *Index) ApplyRigs(rs []schemas.Rig) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.findingChanges++
	counts := map[uint32]int{}
	for i := range rs {
		if !rs[i].Deleted {
			counts[ix.sites.intern(rs[i].SiteID)]++
		}
	}
	for s, n := range counts {
		ix.growSite(s)
		if n >= rebuildMin && n >= len(ix.siteRigs[s])/4 {
			ix.markDirty(s)
		}
	}
	var skipped int
	var first error
	for i := range rs {
		if err := ix.applyRig(&rs[i]); err != nil {
			if skipped == 0 {
				first = err
			}
			skipped++
		}
	}
	for _, s := range ix.dirtyList {
		ix.rebuildSite(s)
		ix.dirty[s] = false
	}
	ix.dirtyList = ix.dirtyList[:0]
	if skipped > 0 {
		ix.log.Warn("skipped invalid rig records", zap.Int("skipped", skipped), zap.Error(first))
	}
	return batchError("rig records", skipped, first)
}

// rebuildMin is the fewest records a batch must bring to a site before its
// capacity is rebuilt rather than updated record by record.
const rebuildMin = 4

func (ix *Index) applyRig(r *schemas.Rig) error {
	if err := checkStamp("rig_id", r.RigID, r.UpdatedAt); err != nil {
		return err
	}
	if !r.Deleted && (!(r.RatedPowerW > 0) || math.IsInf(r.RatedPowerW, 0)) {
		return fmt.Errorf("%w: rig %s: rated_power_w %v must be a number > 0", ErrInvalidInput, r.RigID, r.RatedPowerW)
	}
	v := rigVer{
		stamp:    stamp{at: nanos(r.UpdatedAt), ver: r.Version},
		powerW:   r.RatedPowerW,
		hashrate: float32(math.NaN()),
		rig:      ix.rigIDs.intern(r.RigID),
		serial:   ix.serials.intern(r.Serial),
		model:    ix.models.intern(r.Model),
		op:       ix.operators.intern(r.OperatorID),
		lic:      ix.licenseIDs.intern(r.LicenseID),
		site:     ix.sites.intern(r.SiteID),
		sts:      ix.labels.intern(r.Status),
		deleted:  r.Deleted,
	}
	if r.HashrateTHs != nil {
		v.hashrate = float32(*r.HashrateTHs)
	}
	ix.growRigTables(&v)
	if !v.deleted {
		v.grp = ix.groupOf(v.site, v.lic, v.op)
	}

	vs, i, ok := insertVersion(ix.rigs[v.rig], v)
	if !ok {
		return nil
	}
	ix.rigs[v.rig] = vs
	ix.rigChanges++
	ix.noteMembership(vs, i)

	end, effective := effectiveUntil(vs, i)
	if !effective {
		return nil // an equal-instant version with a later delivery outranks it
	}
	// Over [v.at, end) the previous version gave way to the new one.
	var prev *rigVer
	if i > 0 {
		prev = &vs[i-1]
	}
	if prev != nil {
		ix.contribute(prev, v.at, end, -1)
	}
	ix.contribute(&vs[i], v.at, end, 1)
	return nil
}

func (ix *Index) growRigTables(v *rigVer) {
	ix.rigs = growTo(ix.rigs, v.rig)
	for uint32(len(ix.serialRigs)) <= v.serial {
		ix.serialRigs = append(ix.serialRigs, -1)
	}
	for uint32(len(ix.modelPower)) <= v.model {
		ix.modelPower = append(ix.modelPower, ix.cfg.Catalogue.powerRange(ix.models.s[len(ix.modelPower)]))
	}
	ix.growLicense(v.lic, v.op)
	ix.growSite(v.site)
}

func (ix *Index) growLicense(lic, op uint32) {
	ix.licenses = growTo(ix.licenses, lic)
	ix.licGroups = growTo(ix.licGroups, lic)
	ix.opLicenses = growTo(ix.opLicenses, op)
	ix.opGroups = growTo(ix.opGroups, op)
}

func (ix *Index) growSite(site uint32) {
	ix.siteCap = growTo(ix.siteCap, site)
	ix.siteRigs = growTo(ix.siteRigs, site)
	ix.siteGroups = growTo(ix.siteGroups, site)
	ix.siteMeters = growTo(ix.siteMeters, site)
	ix.dirty = growTo(ix.dirty, site)
}

// noteMembership records that the rig of version vs[i] has been at its site
// and has carried its serial, unless an earlier version already did.
func (ix *Index) noteMembership(vs []rigVer, i int) {
	v := &vs[i]
	if v.deleted {
		return
	}
	newSite, newSerial := true, true
	for j := range vs {
		if j == i || vs[j].deleted {
			continue
		}
		newSite = newSite && vs[j].site != v.site
		newSerial = newSerial && vs[j].serial != v.serial
	}
	if newSite {
		ix.siteRigs[v.site] = append(ix.siteRigs[v.site], v.rig)
	}
	if newSerial {
		if ix.serialRigs[v.serial] < 0 {
			ix.serialRigs[v.serial] = int32(v.rig)
		} else {
			ix.serialMore = append(ix.serialMore, [2]uint32{v.serial, v.rig})
		}
	}
}

func (ix *Index) markDirty(site uint32) {
	if !ix.dirty[site] {
		ix.dirty[site] = true
		ix.dirtyList = append(ix.dirtyList, site)
	}
}

// groupOf returns the capacity group of (site, licence, operator), creating
// it on first use.
func (ix *Index) groupOf(site, lic, op uint32) uint32 {
	k := groupKey{site, lic, op}
	g, ok := ix.groupIdx[k]
	if !ok {
		g = uint32(len(ix.groups))
		ix.groups = append(ix.groups, group{groupKey: k})
		ix.groupIdx[k] = g
		ix.siteGroups[site] = append(ix.siteGroups[site], g)
		ix.licGroups[lic] = append(ix.licGroups[lic], g)
		ix.opGroups[op] = append(ix.opGroups[op], g)
	}
	return g
}

// contribute adds (sign=1) or removes (sign=-1) an active rig version's
// power over [from, to) in its site's and its group's series, unless the
// site awaits a rebuild.
func (ix *Index) contribute(v *rigVer, from, to int64, sign int64) {
	if !ix.rigActive(v) || ix.dirty[v.site] {
		return
	}
	mw := sign * v.milliwatts()
	ix.siteCap[v.site].add(from, to, mw, sign)
	ix.groups[v.grp].cap.add(from, to, mw, sign)
}

// rebuildSite recomputes a site's series and its groups' series from the
// rigs that have ever been there.
func (ix *Index) rebuildSite(site uint32) {
	type delta struct {
		at, mw, n int64
		g         uint32
	}
	var ds []delta
	for _, r := range ix.siteRigs[site] {
		vs := ix.rigs[r]
		for i := range vs {
			v := &vs[i]
			end, effective := effectiveUntil(vs, i)
			if !effective || v.site != site || !ix.rigActive(v) {
				continue
			}
			g := v.grp
			mw := v.milliwatts()
			ds = append(ds, delta{v.at, mw, 1, g})
			if end != maxTime {
				ds = append(ds, delta{end, -mw, -1, g})
			}
		}
	}
	slices.SortFunc(ds, func(a, b delta) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	ix.siteCap[site].steps = ix.siteCap[site].steps[:0]
	for _, g := range ix.siteGroups[site] {
		ix.groups[g].cap.steps = ix.groups[g].cap.steps[:0]
	}
	for _, d := range ds {
		ix.siteCap[site].push(d.at, d.mw, d.n)
		ix.groups[d.g].cap.push(d.at, d.mw, d.n)
	}
}

// ApplyLicense stores one licence record (or tombstone), in any order.
func (ix *Index) ApplyLicense(l schemas.License) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.findingChanges++
	return ix.applyLicense(&l)
}

// ApplyLicenses stores a batch of licence records under one lock; invalid
// records are skipped and summarised in the returned error.
func (ix *Index) ApplyLicenses(ls []schemas.License) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.findingChanges++
	var skipped int
	var first error
	for i := range ls {
		if err := ix.applyLicense(&ls[i]); err != nil {
			if skipped == 0 {
				first = err
			}
			skipped++
		}
	}
	return batchError("licence records", skipped, first)
}

func (ix *Index) applyLicense(l *schemas.License) error {
	if err := checkStamp("license_id", l.LicenseID, l.UpdatedAt); err != nil {
		return err
	}
	v := licVer{
		stamp:   stamp{at: nanos(l.UpdatedAt), ver: l.Version},
		from:    nanos(l.ValidFrom),
		to:      nanos(l.ValidTo),
		lic:     ix.licenseIDs.intern(l.LicenseID),
		op:      ix.operators.intern(l.OperatorID),
		active:  l.Status == schemas.LicenseActive,
		deleted: l.Deleted,
	}
	if l.ValidTo.IsZero() {
		v.to = maxTime // no end of validity recorded
	}
	if l.LicensedCapacityKW != nil {
		kw := *l.LicensedCapacityKW
		if math.IsNaN(kw) || kw < 0 || math.IsInf(kw, 0) {
			return fmt.Errorf("%w: licence %s: licensed_capacity_kw %v", ErrInvalidInput, l.LicenseID, kw)
		}
		v.capMW, v.hasCap = int64(math.Round(kw*1e6)), true
	}
	v.l = *l
	v.l.LicenseID = ix.licenseIDs.s[v.lic]
	v.l.OperatorID = ix.operators.s[v.op]
	v.l.OperatorName = ix.labels.s[ix.labels.intern(l.OperatorName)]
	v.l.Status = ix.labels.s[ix.labels.intern(l.Status)]
	if l.LicensedCapacityKW != nil {
		kw := *l.LicensedCapacityKW
		v.l.LicensedCapacityKW = &kw
	}
	ix.growLicense(v.lic, v.op)
	vs, _, ok := insertVersion(ix.licenses[v.lic], v)
	if !ok {
		return nil
	}
	ix.licenses[v.lic] = vs
	if !v.deleted && !slices.Contains(ix.opLicenses[v.op], v.lic) {
		ix.opLicenses[v.op] = append(ix.opLicenses[v.op], v.lic)
	}
	return nil
}

// ApplyMeter stores one meter record (or tombstone), in any order.
func (ix *Index) ApplyMeter(m schemas.Meter) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.applyMeter(&m)
}

// ApplyMeters stores a batch of meter records under one lock; invalid
// records are skipped and summarised in the returned error.
func (ix *Index) ApplyMeters(ms []schemas.Meter) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var skipped int
	var first error
	for i := range ms {
		if err := ix.applyMeter(&ms[i]); err != nil {
			if skipped == 0 {
				first = err
			}
			skipped++
		}
	}
	return batchError("meter records", skipped, first)
}

func (ix *Index) applyMeter(m *schemas.Meter) error {
	if err := checkStamp("meter_id", m.MeterID, m.UpdatedAt); err != nil {
		return err
	}
	v := meterVer{
		stamp:   stamp{at: nanos(m.UpdatedAt), ver: m.Version},
		meter:   ix.meterIDs.intern(m.MeterID),
		feeder:  ix.feeders.intern(m.FeederID),
		site:    ix.sites.intern(m.SiteID),
		oblast:  ix.oblasts.intern(m.Oblast),
		role:    ix.labels.intern(m.Role),
		class:   ix.labels.intern(m.Class),
		deleted: m.Deleted,
	}
	ix.meters = growTo(ix.meters, v.meter)
	ix.feederMeters = growTo(ix.feederMeters, v.feeder)
	ix.growSite(v.site)
	vs, i, ok := insertVersion(ix.meters[v.meter], v)
	if !ok {
		return nil
	}
	ix.meters[v.meter] = vs
	ix.meterChanges++
	ix.meterTimes = append(ix.meterTimes, v.at)
	ix.meterTimesSorted = false
	if v.deleted {
		return nil
	}
	// Membership lists hold each meter once: it is new to the feeder (site)
	// unless another live version already put it there.
	newFeeder, newSite := true, m.SiteID != ""
	for j := range vs {
		if j != i && !vs[j].deleted {
			newFeeder = newFeeder && vs[j].feeder != v.feeder
			newSite = newSite && vs[j].site != v.site
		}
	}
	if newFeeder {
		ix.feederMeters[v.feeder] = append(ix.feederMeters[v.feeder], v.meter)
	}
	if newSite {
		ix.siteMeters[v.site] = append(ix.siteMeters[v.site], v.meter)
	}
	return nil
}
