package registry

import (
	"cmp"
	"slices"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// UnknownOblast groups the capacity of sites without a site meter that
// names an oblast.
const UnknownOblast = "unknown"

// LicenseNotYetValid is the effective status Stats gives an active licence
// before its valid_from; an active licence past its valid_to counts as
// expired.
const LicenseNotYetValid = "not_yet_valid"

// Stats summarises the registry at one instant.
type Stats struct {
	At time.Time `json:"at"`
	// Operators holding a licence record or running an active rig.
	Operators int `json:"operators"`
	// OperatorsLicensed holding at least one licence in force.
	OperatorsLicensed int `json:"operators_licensed"`
	// Licenses counts licence records in effect by effective status: the
	// recorded status, except that an active licence outside its validity
	// period counts as expired or not_yet_valid.
	Licenses     map[string]int `json:"licenses"`
	ActiveRigs   int            `json:"active_rigs"`
	RegisteredMW float64        `json:"registered_mw"`
	Sites        int            `json:"sites"` // sites with active rigs
	ByOblast     []Group        `json:"by_oblast"`
	ByOperator   []Group        `json:"by_operator"`
	ByModel      []Group        `json:"by_model"`
}

// Group is the active registered equipment of one oblast, operator or model.
type Group struct {
	Key  string  `json:"key"`
	Rigs int     `json:"rigs"`
	MW   float64 `json:"mw"`
}

// Stats returns the registry as it stood at t. It walks every rig, so it is
// meant for reports, not for per-reading use.
func (ix *Index) Stats(t time.Time) Stats {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	at := nanos(t)
	st := Stats{At: t, Licenses: map[string]int{}}

	type acc struct {
		n  int
		mw int64
	}
	byOp := make([]acc, len(ix.operators.s))
	byModel := make([]acc, len(ix.models.s))
	bySite := make([]acc, len(ix.sites.s))
	var totalMW int64
	for r := range ix.rigs {
		v := ix.rigState(uint32(r), at)
		if v == nil || !ix.rigActive(v) {
			continue
		}
		mw := v.milliwatts()
		st.ActiveRigs++
		totalMW += mw
		for _, a := range []*acc{&byOp[v.op], &byModel[v.model], &bySite[v.site]} {
			a.n++
			a.mw += mw
		}
	}
	st.RegisteredMW = float64(totalMW) / 1e9

	licensed := make([]bool, len(ix.operators.s))
	known := make([]bool, len(ix.operators.s))
	for l := range ix.licenses {
		v := ix.licState(uint32(l), at)
		if v == nil {
			continue
		}
		status := v.l.Status
		if v.active {
			switch {
			case at < v.from:
				status = LicenseNotYetValid
			case at >= v.to:
				status = schemas.LicenseExpired
			default:
				licensed[v.op] = true
			}
		}
		st.Licenses[status]++
		known[v.op] = true
	}
	for op := range known {
		if known[op] || byOp[op].n > 0 {
			st.Operators++
		}
		if licensed[op] {
			st.OperatorsLicensed++
		}
	}

	oblastAcc := make([]acc, len(ix.oblasts.s)+1) // last: unknown
	for s, a := range bySite {
		if a.n == 0 {
			continue
		}
		st.Sites++
		o := ix.siteOblast(uint32(s), at)
		oblastAcc[o].n += a.n
		oblastAcc[o].mw += a.mw
	}
	groups := func(accs []acc, key func(i int) string) []Group {
		var out []Group
		for i, a := range accs {
			if a.n > 0 {
				out = append(out, Group{Key: key(i), Rigs: a.n, MW: float64(a.mw) / 1e9})
			}
		}
		slices.SortFunc(out, func(a, b Group) int {
			if c := cmp.Compare(b.MW, a.MW); c != 0 {
				return c
			}
			return cmp.Compare(a.Key, b.Key)
		})
		return out
	}
	st.ByOperator = groups(byOp, func(i int) string { return ix.operators.s[i] })
	st.ByModel = groups(byModel, func(i int) string { return ix.models.s[i] })
	st.ByOblast = groups(oblastAcc, func(i int) string {
		if i == len(ix.oblasts.s) || ix.oblasts.s[i] == "" {
			return UnknownOblast
		}
		return ix.oblasts.s[i]
	})
	return st
}

// siteOblast returns the oblast id of a site at t from its site meter (the
// one with the smallest meter id that names an oblast), or len(oblasts)
// when none does.
func (ix *Index) siteOblast(s uint32, at int64) int {
	best, bestID := len(ix.oblasts.s), ""
	for _, m := range ix.siteMeters[s] {
		v := ix.meterState(m, at)
		if v == nil || v.site != s || ix.labels.s[v.role] != schemas.RoleSite || ix.oblasts.s[v.oblast] == "" {
			continue
		}
		if id := ix.meterIDs.s[m]; bestID == "" || id < bestID {
			best, bestID = int(v.oblast), id
		}
	}
	return best
}

// SiteOblast returns the oblast of a site at t, read from its site meter,
// and false if no site meter names one.
func (ix *Index) SiteOblast(siteID string, t time.Time) (string, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s, ok := ix.sites.idx[siteID]
	if !ok {
		return "", false
	}
	o := ix.siteOblast(s, nanos(t))
	if o == len(ix.oblasts.s) {
		return "", false
	}
	return ix.oblasts.s[o], true
}
