// Package investigate answers investigators: the feeder ranking, the
// feeder, site and operator pages, registry search and evidence bundles,
// from energy in ClickHouse and topology and capacity in the registry.
// The HTTP API (api/) and the command line both call it; neither holds
// investigation logic of its own.
package investigate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rigwatch/rigwatch/detect"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// MaxPageWindow bounds the window of a feeder, site or operator page.
const MaxPageWindow = 366 * 24 * time.Hour

// ErrNoRegistry is returned by the queries that need the registry when
// Queries has none.
var ErrNoRegistry = errors.New("the registry is not loaded")

// Queries are the investigator queries behind the API and the CLI: energy
// from ClickHouse combined with topology and capacity from the registry.
// Topology is taken as it stood at the end of the window. Safe for
// concurrent use.
type Queries struct {
	Store           *store.Store
	Registry        *registry.Index
	TariffKZTPerKWh float64
	// LossBands are the plausible loss bands by feeder class (default
	// detect.DefaultLossBand): a feeder the detector has not judged yet is
	// judged with its own fit within its band.
	LossBands map[string]detect.LossBand
	Location  *time.Location
	Version   string
	// Raw makes the pages read raw readings only, never the hours the
	// detector stored: slower at scale; the reference the stored hours are
	// checked against.
	Raw bool
}

// FeederRank is one feeder's energy balance over a window.
type FeederRank struct {
	Rank       int     `json:"rank"`
	FeederID   string  `json:"feeder_id"`
	Oblast     string  `json:"oblast,omitempty"`
	Class      string  `json:"class,omitempty"` // the head meter's class: the feeder's main class
	HeadMeters int     `json:"head_meters"`
	Meters     int     `json:"meter_count"` // downstream meters registered on the feeder
	Reporting  int     `json:"meters_reporting"`
	HeadKWh    float64 `json:"head_kwh"`
	MetersKWh  float64 `json:"meters_kwh"`
	// UnaccountedKWh is head energy minus the meters' energy: technical
	// losses plus whatever was taken before a meter.
	UnaccountedKWh float64 `json:"unaccounted_kwh"`
	UnaccountedPct float64 `json:"unaccounted_pct"`
	// NormalLossKWh is the normal technical loss of the window by the
	// detector's loss model of the feeder (LossModel); BeyondLossKWh the
	// unaccounted energy beyond it, and ValueKZT its value: only energy
	// beyond normal losses is valued. The ranking applies the model to
	// the window's mean hourly load; a feeder page, hour by hour.
	NormalLossKWh float64            `json:"normal_loss_kwh"`
	BeyondLossKWh float64            `json:"beyond_loss_kwh"`
	BeyondPct     float64            `json:"beyond_loss_pct"`
	ValueKZT      float64            `json:"estimated_value_kzt"`
	LossModel     *schemas.LossModel `json:"loss_model,omitempty"`
}

// FeederRanking is the answer of GET /api/v1/feeders.
type FeederRanking struct {
	From            time.Time    `json:"from"`
	To              time.Time    `json:"to"`
	Feeders         int          `json:"feeders"`              // feeders with a reporting head meter
	WithoutHead     int          `json:"feeders_without_head"` // skipped: no head energy in the window
	TariffKZTPerKWh float64      `json:"tariff_kzt_per_kwh"`
	Top             []FeederRank `json:"top"`
}

func (q *Queries) reg() (*registry.Index, error) {
	if q.Registry == nil {
		return nil, ErrNoRegistry
	}
	return q.Registry, nil
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// balance sums a feeder's meters from per-meter totals.
func (q *Queries) balance(fid string, ms []schemas.Meter, totals map[string]store.MeterTotal) FeederRank {
	fr := FeederRank{FeederID: fid}
	for _, m := range ms {
		t, ok := totals[m.MeterID]
		if m.Role == schemas.RoleFeederHead {
			fr.HeadMeters++
			fr.HeadKWh += t.KWh
			if fr.Class == "" {
				fr.Class = m.Class
			}
			if fr.Oblast == "" {
				fr.Oblast = m.Oblast
			}
			continue
		}
		fr.Meters++
		if ok && t.Rows > 0 {
			fr.Reporting++
		}
		fr.MetersKWh += t.KWh
		if fr.Oblast == "" {
			fr.Oblast = m.Oblast
		}
	}
	setBalance(&fr, fr.HeadKWh, fr.MetersKWh)
	return fr
}

// setBalance sets a feeder's head and metered energy and what is
// unaccounted between them.
func setBalance(fr *FeederRank, head, metered float64) {
	fr.HeadKWh, fr.MetersKWh = round3(head), round3(metered)
	fr.UnaccountedKWh = round3(head - metered)
	fr.UnaccountedPct = 0
	if head > 0 {
		fr.UnaccountedPct = round3(100 * (head - metered) / head)
	}
}

// balanceOf is a feeder's balance from the sums of its stored hours and
// its meters as the registry has them (sum); the reporting meters are
// those with readings in the hours.
func (q *Queries) balanceOf(fid string, sum registry.FeederSummary, t store.FeederTotal) FeederRank {
	fr := FeederRank{FeederID: fid, HeadMeters: sum.HeadMeters, Meters: sum.Meters, Class: sum.Class, Oblast: sum.Oblast}
	fr.Reporting = min(t.Meters, fr.Meters)
	setBalance(&fr, t.HeadKWh, t.MetersKWh)
	return fr
}

// judge sets a feeder's normal loss over a window of hours hours with
// model lm: the ranking's estimate from the window's mean hourly load.
func (q *Queries) judge(fr *FeederRank, lm schemas.LossModel, hours float64) {
	m := fr.MetersKWh
	normal := lm.C*hours + lm.A*m
	if hours > 0 {
		normal += lm.B * m * m / hours
	}
	q.setBeyond(fr, lm, normal)
}

// setBeyond sets a feeder's normal loss, the energy beyond it and its value.
func (q *Queries) setBeyond(fr *FeederRank, lm schemas.LossModel, normal float64) {
	fr.LossModel = &lm
	fr.NormalLossKWh = round3(normal)
	fr.BeyondLossKWh = round3(fr.UnaccountedKWh - normal)
	if fr.MetersKWh > 0 {
		fr.BeyondPct = round3(100 * fr.BeyondLossKWh / fr.MetersKWh)
	}
	fr.ValueKZT = math.Round(max(0, fr.BeyondLossKWh) * q.TariffKZTPerKWh)
}

// band is the loss band of a feeder class.
func (q *Queries) band(class string) detect.LossBand {
	if b, ok := q.LossBands[class]; ok {
		return b
	}
	return detect.DefaultLossBand
}

// typicalModel is the model of a feeder no one has judged: its class's
// typical share of the metered load.
func (q *Queries) typicalModel(id, class string) schemas.LossModel {
	b := q.band(class)
	return schemas.LossModel{FeederID: id, A: b.Typical, Share: b.Typical, FitShare: b.Typical, Allow: b.Max - b.Typical, Source: "band"}
}

// FeederRanking ranks feeders by estimated unaccounted energy over
// (from, to]: per-meter sums from ClickHouse (one GROUP BY over the
// window), combined per feeder with the registry's topology at to.
// oblast, if set, keeps that oblast's feeders only.
func (q *Queries) FeederRanking(ctx context.Context, from, to time.Time, top int, oblast string) (FeederRanking, error) {
	ix, err := q.reg()
	if err != nil {
		return FeederRanking{}, err
	}
	// The detector's stored hours answer when they cover the window's
	// start: the ranking is then over the hours it has evaluated (To says
	// up to where). Otherwise per-meter sums of the raw readings.
	var (
		totals map[string]store.MeterTotal
		fts    map[string]store.FeederTotal
	)
	a, b, ok, err := q.storedHours(ctx, from, to)
	if err != nil {
		return FeederRanking{}, err
	}
	if ok && a.Equal(ceilHour(from)) {
		from, to = a, b
		fts, err = q.Store.FeederTotals(ctx, from, to)
	} else {
		totals, err = q.Store.MeterTotals(ctx, nil, from, to)
	}
	if err != nil {
		return FeederRanking{}, err
	}
	models, err := q.Store.LossModelsAt(ctx, nil, to)
	if err != nil {
		return FeederRanking{}, err
	}
	res := FeederRanking{From: from, To: to, TariffKZTPerKWh: q.TariffKZTPerKWh, Top: []FeederRank{}}
	hours := to.Sub(from).Hours()
	var all []FeederRank
	fids := ix.Feeders()
	var sums map[string]registry.FeederSummary
	if fts != nil {
		sums = feederSummaries(ix, fids, to)
	}
	for _, fid := range fids {
		var fr FeederRank
		if fts != nil {
			fr = q.balanceOf(fid, sums[fid], fts[fid])
		} else {
			fr = q.balance(fid, ix.FeederMeters(fid, to), totals)
		}
		if oblast != "" && fr.Oblast != oblast {
			continue
		}
		if fr.HeadMeters == 0 || fr.HeadKWh <= 0 {
			res.WithoutHead++
			continue
		}
		lm, ok := models[fid]
		if !ok {
			lm = q.typicalModel(fid, fr.Class)
		}
		q.judge(&fr, lm, hours)
		all = append(all, fr)
	}
	res.Feeders = len(all)
	sort.Slice(all, func(i, j int) bool {
		if all[i].BeyondLossKWh != all[j].BeyondLossKWh {
			return all[i].BeyondLossKWh > all[j].BeyondLossKWh
		}
		return all[i].FeederID < all[j].FeederID
	})
	if len(all) > top {
		all = all[:top]
	}
	for i := range all {
		all[i].Rank = i + 1
	}
	res.Top = append(res.Top, all...)
	return res, nil
}

// FeederHour is one hour of a feeder's balance.
type FeederHour struct {
	Hour      time.Time `json:"hour"`
	HeadKWh   float64   `json:"head_kwh"`
	MetersKWh float64   `json:"meters_kwh"`
	// ResidualKWh is head minus meters; LossBandKWh the normal technical
	// loss of that hour by the feeder's loss model; BeyondKWh the residual
	// beyond it.
	ResidualKWh float64 `json:"residual_kwh"`
	LossBandKWh float64 `json:"loss_band_kwh"`
	BeyondKWh   float64 `json:"beyond_kwh"`
}

// Suspect is a meter an imbalance alert names, with its readings over the
// page's window against its usual use: what it read each hour, and what it
// usually reads at that hour of a weekday or a weekend day (the median over
// the four weeks before the window's end).
type Suspect struct {
	schemas.SuspectMeter
	Hours  []time.Time `json:"hours"`
	KWh    []float64   `json:"kwh"`
	Usual  []float64   `json:"usual_kwh"`
	Source string      `json:"alert_id"`
}

// FeederMeter is a meter on a feeder page.
type FeederMeter struct {
	schemas.Meter
	KWh float64 `json:"kwh"`
	// Readings is the number of distinct readings in the window.
	Readings uint64 `json:"readings"`
	// For site meters: the registered capacity and machines behind it at
	// the end of the window.
	RegisteredKW *float64 `json:"registered_kw,omitempty"`
	Rigs         *int     `json:"rigs,omitempty"`
}

// FeederDetail is the answer of GET /api/v1/feeders/{id}.
type FeederDetail struct {
	FeederRank
	From   time.Time       `json:"from"`
	To     time.Time       `json:"to"`
	Hourly []FeederHour    `json:"hourly"`
	Meters []FeederMeter   `json:"meters"`
	Alerts []schemas.Alert `json:"alerts"`
	// Suspects are the meters the feeder_imbalance alert of the window
	// names, best first, with their readings against their usual use.
	Suspects []Suspect `json:"suspects"`
}

// Feeder returns a feeder's page over (from, to].
func (q *Queries) Feeder(ctx context.Context, id string, from, to time.Time) (FeederDetail, error) {
	ix, err := q.reg()
	if err != nil {
		return FeederDetail{}, err
	}
	ms := ix.FeederMeters(id, to)
	if len(ms) == 0 {
		return FeederDetail{}, fmt.Errorf("feeder %q: %w", id, store.ErrNotFound)
	}
	ids := make([]string, len(ms))
	role := map[string]string{}
	for i, m := range ms {
		ids[i] = m.MeterID
		role[m.MeterID] = m.Role
	}
	totals, err := q.Store.MeterTotals(ctx, ids, from, to)
	if err != nil {
		return FeederDetail{}, err
	}
	d := FeederDetail{FeederRank: q.balance(id, ms, totals), From: from, To: to, Hourly: []FeederHour{}, Meters: []FeederMeter{}}
	byHour, err := q.feederHours(ctx, id, ids, role, from, to)
	if err != nil {
		return FeederDetail{}, err
	}
	models, err := q.Store.LossModelsAt(ctx, []string{id}, to)
	if err != nil {
		return FeederDetail{}, err
	}
	lm, ok := models[id]
	if !ok {
		// Not judged by the detector yet: the feeder's own fit over the
		// window, within its class's band.
		var ms, un []float64
		for _, fh := range byHour {
			ms, un = append(ms, fh.MetersKWh), append(un, fh.HeadKWh-fh.MetersKWh)
		}
		if lm, ok = detect.FitLossModel(ms, un, q.band(d.Class), 24); ok {
			lm.FeederID, lm.Source = id, "page_fit"
		} else {
			lm = q.typicalModel(id, d.Class)
		}
	}
	// The balance is the hours': the ranking's figures for the same window.
	var head, metered float64
	for _, fh := range byHour {
		head += fh.HeadKWh
		metered += fh.MetersKWh
	}
	setBalance(&d.FeederRank, head, metered)
	var normal float64
	for _, fh := range byHour {
		fh.ResidualKWh = round3(fh.HeadKWh - fh.MetersKWh)
		loss := lm.Loss(fh.MetersKWh)
		normal += loss
		fh.LossBandKWh = round3(loss)
		fh.BeyondKWh = round3(fh.HeadKWh - fh.MetersKWh - loss)
		fh.HeadKWh, fh.MetersKWh = round3(fh.HeadKWh), round3(fh.MetersKWh)
		d.Hourly = append(d.Hourly, *fh)
	}
	q.setBeyond(&d.FeederRank, lm, normal)
	slices.SortFunc(d.Hourly, func(a, b FeederHour) int { return a.Hour.Compare(b.Hour) })
	for _, m := range ms {
		fm := FeederMeter{Meter: m, KWh: round3(totals[m.MeterID].KWh), Readings: totals[m.MeterID].Rows}
		if m.SiteID != "" {
			f := ix.SiteFleet(m.SiteID, to)
			kw := f.TotalW / 1000
			fm.RegisteredKW, fm.Rigs = &kw, &f.Machines
		}
		d.Meters = append(d.Meters, fm)
	}
	d.Alerts, err = q.Store.ListAlerts(ctx, store.AlertFilter{EntityID: id, Limit: 500})
	if err != nil {
		return FeederDetail{}, err
	}
	if d.Alerts == nil {
		d.Alerts = []schemas.Alert{}
	}
	if d.Suspects, err = q.suspects(ctx, d.Alerts, from, to); err != nil {
		return FeederDetail{}, err
	}
	return d, nil
}

// suspects returns the suspect meters of the feeder_imbalance alert that
// overlaps the window latest (the alert a page opened from an alert shows),
// each with its hourly readings over the window and its usual use.
func (q *Queries) suspects(ctx context.Context, alerts []schemas.Alert, from, to time.Time) ([]Suspect, error) {
	out := []Suspect{}
	var pick *schemas.Alert
	for i := range alerts {
		a := &alerts[i]
		if a.Kind != schemas.KindFeederImbalance || a.WindowEnd.Before(from) || a.WindowStart.After(to) {
			continue
		}
		if pick == nil || a.WindowEnd.After(pick.WindowEnd) {
			pick = a
		}
	}
	if pick == nil {
		return out, nil
	}
	var named []schemas.SuspectMeter
	if b, err := json.Marshal(pick.Evidence["suspect_meters"]); err == nil {
		_ = json.Unmarshal(b, &named)
	}
	if len(named) == 0 {
		return out, nil
	}
	ids := make([]string, len(named))
	for i, s := range named {
		ids[i] = s.MeterID
	}
	usualFrom := to.Add(-28 * 24 * time.Hour)
	start := from
	if usualFrom.Before(start) {
		start = usualFrom
	}
	hours, err := q.Store.MeterHourly(ctx, ids, start, to)
	if err != nil {
		return nil, err
	}
	loc := q.Location
	if loc == nil {
		loc = schemas.Local
	}
	slot := func(t time.Time) int {
		l := t.In(loc)
		if wd := l.Weekday(); wd == time.Saturday || wd == time.Sunday {
			return 24 + l.Hour()
		}
		return l.Hour()
	}
	type series struct {
		hist [48][]float64
		win  map[time.Time]float64
	}
	by := map[string]*series{}
	for _, id := range ids {
		by[id] = &series{win: map[time.Time]float64{}}
	}
	for _, mh := range hours {
		s := by[mh.MeterID]
		if !mh.Hour.Before(usualFrom) {
			s.hist[slot(mh.Hour)] = append(s.hist[slot(mh.Hour)], mh.KWh)
		}
		if !mh.Hour.Before(from) {
			s.win[mh.Hour] = mh.KWh
		}
	}
	for _, sm := range named {
		s := by[sm.MeterID]
		var usual [48]float64
		for j := range usual {
			if len(s.hist[j]) > 0 {
				v := slices.Clone(s.hist[j])
				slices.Sort(v)
				usual[j] = v[len(v)/2]
			}
		}
		sp := Suspect{SuspectMeter: sm, Source: pick.AlertID, Hours: []time.Time{}, KWh: []float64{}, Usual: []float64{}}
		for t := from.Truncate(time.Hour); t.Before(to); t = t.Add(time.Hour) {
			v, ok := s.win[t]
			if !ok {
				continue
			}
			sp.Hours = append(sp.Hours, t)
			sp.KWh = append(sp.KWh, round3(v))
			sp.Usual = append(sp.Usual, round3(usual[slot(t)]))
		}
		out = append(out, sp)
	}
	return out, nil
}

// PowerHour is one hour of a site's metered power against its registered
// capacity.
type PowerHour struct {
	Hour         time.Time `json:"hour"`
	MeteredKW    float64   `json:"metered_kw"`
	RegisteredKW float64   `json:"registered_kw"`
}

// EnergyDay is one settlement day: energy metered against energy bought.
type EnergyDay struct {
	Day          string  `json:"day"` // YYYY-MM-DD in the settlement time zone
	ConsumedKWh  float64 `json:"consumed_kwh"`
	PurchasedKWh float64 `json:"purchased_kwh"`
	ShortfallKWh float64 `json:"shortfall_kwh"`
}

// LicenceState is a licence as it stood at the end of a window, with
// whether it was in force.
type LicenceState struct {
	schemas.License
	InForce bool `json:"in_force"`
}

// SiteDetail is the answer of GET /api/v1/sites/{id}.
type SiteDetail struct {
	SiteID    string             `json:"site_id"`
	Oblast    string             `json:"oblast,omitempty"`
	From      time.Time          `json:"from"`
	To        time.Time          `json:"to"`
	Fleet     registry.Fleet     `json:"fleet"`
	Operators []string           `json:"operators"`
	Licences  []LicenceState     `json:"licences"`
	Meters    []schemas.Meter    `json:"meters"`
	Capacity  []registry.Step    `json:"capacity_changes"`
	Hourly    []PowerHour        `json:"hourly"`
	Daily     []EnergyDay        `json:"daily"`
	Rigs      []schemas.Rig      `json:"rigs"` // active at the end of the window
	Purchases []schemas.Purchase `json:"purchases"`
	Alerts    []schemas.Alert    `json:"alerts"`
}

// activeRigs returns the rigs whose state at t is active at the site.
func activeRigs(ix *registry.Index, siteID string, t time.Time) []schemas.Rig {
	seen := map[string]bool{}
	var out []schemas.Rig
	for _, r := range ix.SiteHistory(siteID) {
		if seen[r.RigID] {
			continue
		}
		seen[r.RigID] = true
		if cur, ok := ix.RigAt(r.RigID, t); ok && cur.SiteID == siteID && cur.Status == schemas.RigActive {
			out = append(out, cur)
		}
	}
	slices.SortFunc(out, func(a, b schemas.Rig) int { return strings.Compare(a.RigID, b.RigID) })
	return out
}

func licenceStates(ix *registry.Index, ids []string, t time.Time) []LicenceState {
	out := []LicenceState{}
	for _, id := range ids {
		if l, ok := ix.LicenseAt(id, t); ok {
			out = append(out, LicenceState{License: l, InForce: ix.LicenseValid(id, t)})
		}
	}
	return out
}

// Site returns a site's page over (from, to].
func (q *Queries) Site(ctx context.Context, id string, from, to time.Time) (SiteDetail, error) {
	ix, err := q.reg()
	if err != nil {
		return SiteDetail{}, err
	}
	hist := ix.SiteHistory(id)
	ms := ix.SiteMeters(id, to)
	if len(hist) == 0 && len(ms) == 0 {
		return SiteDetail{}, fmt.Errorf("site %q: %w", id, store.ErrNotFound)
	}
	d := SiteDetail{SiteID: id, From: from, To: to, Fleet: ix.SiteFleet(id, to), Meters: ms, Operators: []string{}}
	if d.Meters == nil {
		d.Meters = []schemas.Meter{}
	}
	d.Oblast, _ = ix.SiteOblast(id, to)
	d.Rigs = activeRigs(ix, id, to)
	if d.Rigs == nil {
		d.Rigs = []schemas.Rig{}
	}
	ops, lics := map[string]bool{}, map[string]bool{}
	for _, r := range hist {
		ops[r.OperatorID], lics[r.LicenseID] = true, true
	}
	for o := range ops {
		d.Operators = append(d.Operators, o)
	}
	slices.Sort(d.Operators)
	licIDs := make([]string, 0, len(lics))
	for l := range lics {
		licIDs = append(licIDs, l)
	}
	slices.Sort(licIDs)
	d.Licences = licenceStates(ix, licIDs, to)
	d.Capacity = ix.CapacityChanges(id, from, to)

	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.MeterID
	}
	hours, err := q.siteMeterHours(ctx, []string{id}, ids, from, to)
	if err != nil {
		return SiteDetail{}, err
	}
	byHour := map[time.Time]float64{}
	for _, mh := range hours {
		byHour[mh.Hour] += mh.KWh
	}
	d.Hourly = []PowerHour{}
	for h, kwh := range byHour {
		d.Hourly = append(d.Hourly, PowerHour{Hour: h, MeteredKW: round3(kwh), RegisteredKW: round3(ix.SiteCapacityW(id, h) / 1000)})
	}
	slices.SortFunc(d.Hourly, func(a, b PowerHour) int { return a.Hour.Compare(b.Hour) })
	d.Purchases, d.Daily, d.Alerts, err = q.ledger(ctx, "", id, id, hours, from, to)
	if err != nil {
		return SiteDetail{}, err
	}
	return d, nil
}

// ledger returns what an operator's or a site's page shows beside its
// power: the purchases over (from, to], consumption against them per
// settlement day, and the alerts about the entity.
func (q *Queries) ledger(ctx context.Context, operatorID, siteID, entityID string, hours []store.MeterHour, from, to time.Time) ([]schemas.Purchase, []EnergyDay, []schemas.Alert, error) {
	ps, err := q.Store.OperatorPurchases(ctx, operatorID, siteID, from, to)
	if err != nil {
		return nil, nil, nil, err
	}
	if ps == nil {
		ps = []schemas.Purchase{}
	}
	alerts, err := q.Store.ListAlerts(ctx, store.AlertFilter{EntityID: entityID, Limit: 500})
	if alerts == nil {
		alerts = []schemas.Alert{}
	}
	return ps, q.daily(hours, ps), alerts, err
}

// daily sums metered energy and purchases per settlement day.
func (q *Queries) daily(hours []store.MeterHour, ps []schemas.Purchase) []EnergyDay {
	byDay := map[string]*EnergyDay{}
	get := func(t time.Time) *EnergyDay {
		k := t.In(q.Location).Format("2006-01-02")
		d := byDay[k]
		if d == nil {
			d = &EnergyDay{Day: k}
			byDay[k] = d
		}
		return d
	}
	for _, h := range hours {
		get(h.Hour).ConsumedKWh += h.KWh
	}
	for _, p := range ps {
		get(p.TS).PurchasedKWh += p.MWh * 1000
	}
	out := []EnergyDay{}
	for _, d := range byDay {
		d.ConsumedKWh, d.PurchasedKWh = round3(d.ConsumedKWh), round3(d.PurchasedKWh)
		d.ShortfallKWh = round3(max(0, d.ConsumedKWh-d.PurchasedKWh))
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b EnergyDay) int { return strings.Compare(a.Day, b.Day) })
	return out
}

// OperatorDetail is the answer of GET /api/v1/operators/{id}.
type OperatorDetail struct {
	OperatorID string             `json:"operator_id"`
	From       time.Time          `json:"from"`
	To         time.Time          `json:"to"`
	Fleet      registry.Fleet     `json:"fleet"`
	Licences   []LicenceState     `json:"licences"`
	Sites      []SiteSummary      `json:"sites"`
	Daily      []EnergyDay        `json:"daily"`
	Purchases  []schemas.Purchase `json:"purchases"`
	Alerts     []schemas.Alert    `json:"alerts"`
}

// SiteSummary is a site on an operator page.
type SiteSummary struct {
	SiteID       string  `json:"site_id"`
	Machines     int     `json:"machines"`
	RegisteredKW float64 `json:"registered_kw"`
	ConsumedKWh  float64 `json:"consumed_kwh"`
}

// Operator returns an operator's page over (from, to].
func (q *Queries) Operator(ctx context.Context, id string, from, to time.Time) (OperatorDetail, error) {
	ix, err := q.reg()
	if err != nil {
		return OperatorDetail{}, err
	}
	d := OperatorDetail{OperatorID: id, From: from, To: to, Fleet: ix.OperatorFleet(id, to), Licences: []LicenceState{}, Sites: []SiteSummary{}}
	for _, l := range ix.OperatorLicenses(id, to) {
		d.Licences = append(d.Licences, LicenceState{License: l, InForce: ix.LicenseValid(l.LicenseID, to)})
	}
	sites := ix.OperatorSites(id)
	if len(sites) == 0 && len(d.Licences) == 0 {
		return OperatorDetail{}, fmt.Errorf("operator %q: %w", id, store.ErrNotFound)
	}
	var ids []string
	siteOf := map[string]string{}
	for _, s := range sites {
		for _, m := range ix.SiteMeters(s, to) {
			ids = append(ids, m.MeterID)
			siteOf[m.MeterID] = s
		}
	}
	hours, err := q.siteMeterHours(ctx, sites, ids, from, to)
	if err != nil {
		return OperatorDetail{}, err
	}
	used := map[string]float64{}
	for _, h := range hours {
		used[siteOf[h.MeterID]] += h.KWh
	}
	for _, s := range sites {
		f := ix.SiteFleet(s, to)
		d.Sites = append(d.Sites, SiteSummary{SiteID: s, Machines: f.Machines, RegisteredKW: round3(f.TotalW / 1000), ConsumedKWh: round3(used[s])})
	}
	d.Purchases, d.Daily, d.Alerts, err = q.ledger(ctx, id, "", id, hours, from, to)
	if err != nil {
		return OperatorDetail{}, err
	}
	return d, nil
}

// SearchHit is one registry record matching a search.
type SearchHit struct {
	Type string `json:"type"` // rig, site, operator, licence, meter, feeder
	ID   string `json:"id"`
	// What describes the match in a line.
	What   string `json:"what"`
	Record any    `json:"record,omitempty"`
}

// SearchResult is the answer of GET /api/v1/registry/search.
type SearchResult struct {
	Query string      `json:"query"`
	At    time.Time   `json:"at"`
	Hits  []SearchHit `json:"hits"`
}

// Search finds registry records whose id (or a rig's serial) equals term,
// as they stood at at.
func (q *Queries) Search(term string, at time.Time) (SearchResult, error) {
	ix, err := q.reg()
	if err != nil {
		return SearchResult{}, err
	}
	res := SearchResult{Query: term, At: at, Hits: []SearchHit{}}
	for _, r := range ix.RigBySerial(term) {
		res.Hits = append(res.Hits, SearchHit{Type: "rig", ID: r.RigID, What: fmt.Sprintf("serial %s: rig %s (%s) at site %s, %s", r.Serial, r.RigID, r.Status, r.SiteID, r.OperatorID), Record: r})
	}
	if r, ok := ix.RigAt(term, at); ok {
		res.Hits = append(res.Hits, SearchHit{Type: "rig", ID: r.RigID, What: fmt.Sprintf("rig %s (%s), serial %s, at site %s", r.RigID, r.Status, r.Serial, r.SiteID), Record: r})
	} else if h := ix.RigHistory(term); len(h) > 0 {
		res.Hits = append(res.Hits, SearchHit{Type: "rig", ID: term, What: fmt.Sprintf("rig %s: %d versions, none in effect at %s", term, len(h), at.Format(time.RFC3339)), Record: h})
	}
	if hist := ix.SiteHistory(term); len(hist) > 0 || len(ix.SiteMeters(term, at)) > 0 {
		f := ix.SiteFleet(term, at)
		res.Hits = append(res.Hits, SearchHit{Type: "site", ID: term, What: fmt.Sprintf("site %s: %d active rigs, %.1f kW registered", term, f.Machines, f.TotalW/1000), Record: f})
	}
	if ls := ix.OperatorLicenses(term, at); len(ls) > 0 || ix.OperatorFleet(term, at).Machines > 0 {
		f := ix.OperatorFleet(term, at)
		res.Hits = append(res.Hits, SearchHit{Type: "operator", ID: term, What: fmt.Sprintf("operator %s: %d licences, %d active rigs, %.1f kW", term, len(ls), f.Machines, f.TotalW/1000), Record: ls})
	}
	if l, ok := ix.LicenseAt(term, at); ok {
		res.Hits = append(res.Hits, SearchHit{Type: "licence", ID: term, What: fmt.Sprintf("licence %s of %s: %s, valid %s to %s", term, l.OperatorID, l.Status, l.ValidFrom.Format("2006-01-02"), l.ValidTo.Format("2006-01-02")), Record: l})
	}
	if m, ok := ix.MeterAt(term, at); ok {
		res.Hits = append(res.Hits, SearchHit{Type: "meter", ID: term, What: fmt.Sprintf("meter %s (%s, %s) on feeder %s", term, m.Role, m.Class, m.FeederID), Record: m})
	}
	if ms := ix.FeederMeters(term, at); len(ms) > 0 {
		res.Hits = append(res.Hits, SearchHit{Type: "feeder", ID: term, What: fmt.Sprintf("feeder %s: %d meters", term, len(ms))})
	}
	return res, nil
}

// DataNow is "now" in the data's event time: the end of the newest stored
// reading, or now when none is stored. Windows counted back from a
// duration ("the last 7 days") count back from it.
func DataNow(ctx context.Context, st *store.Store, now time.Time) (time.Time, error) {
	last, err := st.LatestReadingTime(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if last.IsZero() {
		return now.UTC().Truncate(time.Second), nil
	}
	return last, nil
}

// RegistryNow is the instant "the registry as it stands" means: now, or
// the newest stored registry record when that is later (a demo's event
// time runs ahead of the wall clock, and its records with it).
func RegistryNow(ctx context.Context, st *store.Store, now time.Time) (time.Time, error) {
	last, err := st.RegistryLatest(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now = now.UTC().Truncate(time.Second)
	if last.After(now) {
		return last, nil
	}
	return now, nil
}

// AlertContext is how much of the time before an alert's window a page
// opened from the alert shows.
const AlertContext = 24 * time.Hour

// AlertWindow is the window of a page opened from alert a: the alert's
// window with AlertContext before it, at most MaxPageWindow long.
func AlertWindow(a schemas.Alert) (from, to time.Time) {
	to = a.WindowEnd.UTC()
	from = a.WindowStart.UTC().Add(-AlertContext)
	if from.After(to) {
		from = to.Add(-AlertContext)
	}
	if to.Sub(from) > MaxPageWindow {
		from = to.Add(-MaxPageWindow)
	}
	return from, to
}
