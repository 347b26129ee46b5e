package detect

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// Mark names a reading stored after the engine read past its time: a late
// or corrected reading. Ingest reports them; Invalidate makes the next
// evaluation read its hour again.
type Mark struct {
	MeterID   string
	TS        time.Time // the end of the reading's interval
	IntervalS int32     // its length; 0 for the default 900 s
}

// HourOf returns the hour a reading ending at ts falls in.
func HourOf(ts time.Time) time.Time { return ts.Add(-time.Second).UTC().Truncate(time.Hour) }

// state is what an Engine keeps from one Evaluate to the next while calls
// continue: the rolling grid of hourly aggregates of every meter, the
// feeders' and sites' hourly series derived from it, and caches of what is
// computed once a local day. An evaluation then reads only the hours it has
// not read (plus any marked late), and its cost does not grow with the
// lookback. All of it is dropped when a call does not continue the last.
type state struct {
	g       *grid
	pending map[string]map[int64]bool // marks not yet read: meter id -> hour (Unix s)
	// What changed since the derived figures were computed: every meter's
	// hours from dirtyAll on, and single meters' from dirtyMet; done is
	// where the figures end.
	dirtyAll int64
	dirtyMet map[int32]int64
	done     int64
	// the registry's change counters and the meters present in the grid
	// (count and a checksum of their indexes) the figures were derived with
	regMeters, regRigs uint64
	present            [2]int
	meta               []meterInfo
	known              []bool // known to the registry and present in the grid
	// the registry's view of each meter (metaSet), valid for calls ending
	// in [metaFrom, metaUntil)
	metaSet, regKnown   []bool
	metaFrom, metaUntil time.Time

	feeders map[string]*feederSeries // by feeder id, aligned with g
	sites   map[int32]*siteSeries    // by site meter, aligned with g
	// computed once per local day (Unix s of its start)
	fits  map[string]map[int64]lossModel // a feeder's own fit
	bases map[int32]map[int64]baseline   // a meter's baseline
	peers map[peerKey]peerProfile        // a class's peers, by class and day
	caps  map[int32]map[int64]capDay     // a site's draw
}

// meterInfo is what the rules ask of a meter's registry record: kept for
// every meter in the grid, so no more than that (a million meters).
type meterInfo struct{ FeederID, SiteID, Role, Class, Oblast string }

func newState() *state {
	return &state{pending: map[string]map[int64]bool{}, dirtyAll: math.MaxInt64, dirtyMet: map[int32]int64{},
		done: math.MinInt64, feeders: map[string]*feederSeries{}, sites: map[int32]*siteSeries{},
		fits: map[string]map[int64]lossModel{}, bases: map[int32]map[int64]baseline{}, peers: map[peerKey]peerProfile{},
		caps: map[int32]map[int64]capDay{}}
}

// Invalidate tells the engine that the readings of these meter-hours
// changed after it read them (ingest found them late or corrected): the
// next Evaluate reads them again, and the figures that depend on them are
// recomputed. Marks outside the rolling window, or before any evaluation,
// need nothing: a fresh evaluation reads everything.
func (e *Engine) Invalidate(marks []Mark) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.st.g == nil {
		return
	}
	for _, m := range marks {
		ts, iv := m.TS.Unix(), int64(m.IntervalS)
		if iv <= 0 {
			iv = schemas.DefaultIntervalS
		}
		hs := e.st.pending[m.MeterID]
		if hs == nil {
			hs = map[int64]bool{}
			e.st.pending[m.MeterID] = hs
		}
		// every hour its interval covers
		for h := floorDiv(ts-iv, hourS) * hourS; h < ts; h += hourS {
			hs[h] = true
		}
		if ts%hourS == 0 {
			// the hour's last reading is the predecessor of the next
			// hour's first: its difference is booked there
			hs[ts] = true
		}
	}
}

// RowsRead returns how many readings the engine has read from its Series:
// divided by the readings stored, the rows read back per reading.
func (e *Engine) RowsRead() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rowsRead
}

// load reads readings into the state's grid for an evaluation reading from
// readFrom to last: all of them on a fresh grid; else the grid slides to
// readFrom, the hours from Config.ReadOverlap before its end to last are
// read (the earlier ones are not read again) and the marked hours read
// again.
func (e *Engine) load(ctx context.Context, src Series, readFrom, last time.Time) error {
	st := e.st
	overlap := int64(e.cfg.ReadOverlap / time.Second)
	count := func(fn func(string, []time.Time, []float64, []int32)) func(string, []time.Time, []float64, []int32) error {
		return func(id string, ts []time.Time, kwh []float64, iv []int32) error {
			e.rowsRead += int64(len(ts))
			fn(id, ts, kwh, iv)
			return nil
		}
	}
	if st.g == nil {
		// The grid starts on the local day the first reading ends in, if
		// later than the lookback: a fleet whose data began yesterday
		// needs no month of empty hours, nor a day of them before its
		// first. It covers every hour evaluated all the same (Evaluate
		// starts no earlier than that reading's hour); the settlements of
		// purchases start with its day.
		if sp, ok := src.(spanner); ok {
			first, _, err := sp.ReadingSpan(ctx)
			if err != nil {
				return err
			}
			if !first.IsZero() {
				eval := readFrom.Add(e.cfg.Lookback)
				readFrom = maxTime(readFrom, e.dayStart(first.Add(-time.Second)))
				if readFrom.After(eval) {
					readFrom = eval
				}
			}
		}
		g := newGrid(readFrom, last)
		g.anchorAt = last.Unix() - overlap
		if err := src.MeterReadings(ctx, readFrom, last, count(g.add)); err != nil {
			return err
		}
		st.g = g
		st.pending = map[string]map[int64]bool{}
		return nil
	}
	g := st.g
	prevEnd := g.t0 + int64(g.n)*hourS
	if readFrom.Unix() < g.t0 {
		readFrom = time.Unix(g.t0, 0).UTC()
	}
	d := int((readFrom.Unix() - g.t0) / hourS)
	g.slide(readFrom, last)
	for _, f := range st.feeders {
		f.m, f.hd, f.complete = resize(f.m, d, g.n), resize(f.hd, d, g.n), resize(f.complete, d, g.n)
		f.headE, f.all, f.cnt = resize(f.headE, d, g.n), resize(f.all, d, g.n), resize(f.cnt, d, g.n)
	}
	for _, s := range st.sites {
		s.p, s.c = resize(s.p, d, g.n), resize(s.c, d, g.n)
		s.e, s.cov = resize(s.e, d, g.n), resize(s.cov, d, g.n)
	}
	// The hours from the overlap before the old end on are read again:
	// each meter's anchor is the reading before them.
	again := max(g.t0, g.anchorAt)
	ha := int((again - g.t0) / hourS)
	for mi := range g.ids {
		g.zero(int32(mi), ha, g.n)
	}
	g.fromAnchors()
	g.anchorAt = last.Unix() - overlap
	bk := booking{after: again, fresh: prevEnd, lo: ha, hi: g.n}
	if again < last.Unix() {
		err := src.MeterReadings(ctx, time.Unix(again, 0).UTC(), last, count(func(id string, ts []time.Time, kwh []float64, iv []int32) {
			g.addWindow(g.meter(id), ts, kwh, iv, bk)
		}))
		if err != nil {
			return err
		}
	}
	st.dirtyAll = min(st.dirtyAll, again)
	return e.reread(ctx, src)
}

// reread reads the marked meter-hours again, grouped by hour.
func (e *Engine) reread(ctx context.Context, src Series) error {
	st := e.st
	g := st.g
	byHour := map[int64][]string{}
	for id, hs := range st.pending {
		for h := range hs {
			if h >= g.t0 && h < g.t0+int64(g.n)*hourS {
				byHour[h] = append(byHour[h], id)
			}
		}
	}
	st.pending = map[string]map[int64]bool{}
	hours := make([]int64, 0, len(byHour))
	for h := range byHour {
		hours = append(hours, h)
	}
	slices.Sort(hours)
	for _, hs := range hours {
		ids := byHour[hs]
		slices.Sort(ids)
		h := int((hs - g.t0) / hourS)
		for _, id := range ids {
			mi := g.meter(id)
			g.zero(mi, h, h+1)
			g.forget(mi)
			st.markMeter(mi, hs)
		}
		// The hour's readings, a reading of the next hour that straddles
		// into it, and the one before them for the first one's difference:
		// as far as the longest interval of these meters either side.
		iv := int64(schemas.DefaultIntervalS)
		for _, id := range ids {
			if v := int64(g.aIV[g.meter(id)]); v > iv {
				iv = min(v, hourS)
			}
		}
		bk := booking{after: hs, fresh: math.MaxInt64, lo: h, hi: h + 1}
		err := src.MeterReadingsOf(ctx, ids, time.Unix(hs-iv, 0).UTC(), time.Unix(hs+hourS+iv-1, 0).UTC(),
			func(id string, ts []time.Time, kwh []float64, iv []int32) error {
				e.rowsRead += int64(len(ts))
				g.addWindow(g.meter(id), ts, kwh, iv, bk)
				return nil
			})
		if err != nil {
			return fmt.Errorf("cannot read marked readings of %s: %w", time.Unix(hs, 0).UTC().Format(time.RFC3339), err)
		}
	}
	return nil
}

// markMeter records that meter mi's grid hours from Unix s h on changed.
func (st *state) markMeter(mi int32, h int64) {
	if v, ok := st.dirtyMet[mi]; !ok || h < v {
		st.dirtyMet[mi] = h
	}
}

// dirtyOf returns the earliest hour (Unix s) of meter mi that changed since
// the figures were derived, or MaxInt64.
func (st *state) dirtyOf(mi int32) int64 {
	if v, ok := st.dirtyMet[mi]; ok {
		return min(v, st.dirtyAll)
	}
	return st.dirtyAll
}

// spanner is a Series that knows when its readings start (the store, a
// MemSeries): a fresh grid starts there.
type spanner interface {
	ReadingSpan(ctx context.Context) (from, to time.Time, err error)
}

// versioned is a Registry that counts its changes (*registry.Index does):
// the engine derives feeder memberships and site capacities again only
// when they move. Without it, it derives them every call.
type versioned interface {
	Changes() (meters, rigs uint64)
}

// meterTimeline is a Registry that tells when its meter records next
// change (*registry.Index does): the engine asks MeterAt again only then.
type meterTimeline interface {
	NextMeterChange(t time.Time) time.Time
}

// prepare brings the state's figures derived from the grid up to date for
// run r: the registry view of every meter, and which hours of the feeders'
// and sites' series, and which days of the cached fits, baselines, peers
// and site draws, must be derived again because their readings or the
// registry changed.
func (r *run) prepare(last time.Time) {
	st, g, e := r.e.st, r.g, r.e
	meters, rigs := st.regMeters+1, st.regRigs+1
	if v, ok := e.reg.(versioned); ok {
		meters, rigs = v.Changes()
	}
	// What the registry says of each meter at the end of the call holds
	// until a meter record dated later, or a new record.
	at := last.Add(-time.Nanosecond)
	tl, ok := e.reg.(meterTimeline)
	if !ok || meters != st.regMeters || !at.Before(st.metaUntil) || at.Before(st.metaFrom) {
		clear(st.metaSet)
		st.metaFrom, st.metaUntil = at, time.Time{}
		if ok {
			if st.metaUntil = tl.NextMeterChange(at); st.metaUntil.IsZero() {
				st.metaUntil = time.Unix(1<<40, 0)
			}
		}
	}
	st.meta = resize(st.meta, 0, len(g.ids))
	st.known = resize(st.known, 0, len(g.ids))
	st.metaSet = resize(st.metaSet, 0, len(g.ids))
	st.regKnown = resize(st.regKnown, 0, len(g.ids))
	present := [2]int{}
	for i, id := range g.ids {
		// A meter with no reading left in the grid is not there: a replay
		// would not have read it.
		if g.seen[i] <= g.t0 {
			st.known[i] = false
			continue
		}
		present[0]++
		present[1] = present[1]*31 + i
		if !st.metaSet[i] {
			var m schemas.Meter
			m, st.regKnown[i] = e.reg.MeterAt(id, at)
			st.meta[i] = meterInfo{FeederID: m.FeederID, SiteID: m.SiteID, Role: m.Role, Class: m.Class, Oblast: m.Oblast}
			st.metaSet[i] = true
		}
		st.known[i] = st.regKnown[i]
	}
	r.meta, r.known = st.meta, st.known

	newMeters := meters != st.regMeters || present != st.present
	newRigs := rigs != st.regRigs
	st.regMeters, st.regRigs, st.present = meters, rigs, present

	end := g.t0 + int64(g.n)*hourS
	dirty := min(st.dirtyAll, st.done)
	for _, h := range st.dirtyMet {
		dirty = min(dirty, h)
	}
	hourIn := func(t int64) int {
		if t <= g.t0 {
			return 0
		}
		return int(min((t-g.t0)/hourS, int64(g.n)))
	}
	r.fedFrom, r.capFrom = hourIn(dirty), hourIn(st.done)
	if newMeters {
		r.fedFrom = 0
		for _, f := range st.feeders {
			clear(f.mem)
		}
		clear(st.fits)
		clear(st.peers)
	}
	if newRigs {
		r.capFrom = 0
		clear(st.caps)
	}
	if r.capFrom > r.fedFrom {
		// a site's draw is derived with its capacity
		r.capFrom = r.fedFrom
	}

	// Days whose figures rest on changed hours are derived again; days
	// before the first one evaluated are not needed any more.
	keep := g.t0 + int64(r.dayOf(r.hFirst))*hourS
	for mi, days := range st.bases {
		d := st.dirtyOf(mi)
		for day := range days {
			if day > d || day < keep {
				delete(days, day)
			}
		}
		if len(days) == 0 {
			delete(st.bases, mi)
		}
	}
	for mi, days := range st.caps {
		d := min(st.dirtyOf(mi), st.done)
		for day := range days {
			if day > d || day < keep {
				delete(days, day)
			}
		}
	}
	fedDirty := map[string]int64{}
	for mi, h := range st.dirtyMet {
		if st.known[mi] {
			f := st.meta[mi].FeederID
			if v, ok := fedDirty[f]; !ok || h < v {
				fedDirty[f] = h
			}
		}
	}
	for f, days := range st.fits {
		d := min(st.dirtyAll, st.done)
		if v, ok := fedDirty[f]; ok {
			d = min(d, v)
		}
		for day := range days {
			if day > d || day < keep {
				delete(days, day)
			}
		}
	}
	for k, p := range st.peers {
		if p.day > dirty || p.day < keep {
			delete(st.peers, k)
		}
	}
	for id, f := range st.feeders {
		if f.head >= int32(len(g.ids)) || !st.known[f.head] || st.meta[f.head].FeederID != id {
			delete(st.feeders, id)
		}
	}
	for mi := range st.sites {
		if !st.known[mi] || st.meta[mi].Role != schemas.RoleSite {
			delete(st.sites, mi)
		}
	}
	st.dirtyAll, st.done = math.MaxInt64, end
	clear(st.dirtyMet)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
