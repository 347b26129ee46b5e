package detect

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// Series is the stored data the Engine reads. A store that streams readings
// ordered by (meter_id, ts) for a time range fits it directly.
type Series interface {
	// MeterReadings calls fn with the latest version of every reading whose
	// ts (the END of its interval) is in (from, to]. Readings come in
	// chunks, each of one meter and sorted by ts; a meter may come in
	// several chunks. fn must not keep the slices. intervalS may hold 0 for
	// the default 900 s.
	MeterReadings(ctx context.Context, from, to time.Time, fn func(meterID string, ts []time.Time, kwh []float64, intervalS []int32) error) error
	// Purchases returns the marketplace purchases with ts in [from, to).
	Purchases(ctx context.Context, from, to time.Time) ([]schemas.Purchase, error)
	// MeterReadingsOf is MeterReadings for the given meters only: the
	// engine reads again the hours ingest marked late.
	MeterReadingsOf(ctx context.Context, meterIDs []string, from, to time.Time, fn func(meterID string, ts []time.Time, kwh []float64, intervalS []int32) error) error
	// MeterTotalsBefore returns, for each of the given meters that has
	// readings with ts <= t, their total energy at their latest versions:
	// the opening of an operator's prepaid account.
	MeterTotalsBefore(ctx context.Context, meterIDs []string, t time.Time) (map[string]float64, error)
}

// Registry is the registry view the Engine needs. *registry.Index
// satisfies it.
type Registry interface {
	MeterAt(meterID string, t time.Time) (schemas.Meter, bool)
	FeederMeters(feederID string, t time.Time) []schemas.Meter
	SiteCapacityW(siteID string, t time.Time) float64
	SiteHistory(siteID string) []schemas.Rig
	CheckWindow(from, to time.Time) []schemas.Alert
}

// MemSeries is an in-memory Series: it keeps the latest version of every
// (meter, ts) reading and every purchase by tx_id. It is safe for concurrent
// use.
type MemSeries struct {
	mu        sync.RWMutex
	meters    map[string]*memMeter
	purchases map[string]schemas.Purchase
}

type memMeter struct {
	rs []memReading // by ts, unique
}

// memReading is one stored reading: kept together, a reading added costs
// one cache line, not one per field.
type memReading struct {
	t   int64 // Unix nanoseconds
	kwh float64
	ver uint64
	iv  int32
}

// after returns the index of the first reading after t (Unix ns).
func (mm *memMeter) after(t int64) int {
	return sort.Search(len(mm.rs), func(k int) bool { return mm.rs[k].t > t })
}

// NewMemSeries returns an empty MemSeries.
func NewMemSeries() *MemSeries {
	return &MemSeries{meters: map[string]*memMeter{}, purchases: map[string]schemas.Purchase{}}
}

// AddReadings stores readings. A reading with the (meter_id, ts) of a stored
// one replaces it unless its Meta.Version is lower: the later delivery wins,
// and a redelivery changes nothing.
func (m *MemSeries) AddReadings(rs ...schemas.Reading) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range rs {
		r := &rs[i]
		mm := m.meters[r.MeterID]
		if mm == nil {
			mm = &memMeter{}
			m.meters[strings.Clone(r.MeterID)] = mm
		}
		iv := r.IntervalS
		if iv <= 0 {
			iv = schemas.DefaultIntervalS
		}
		t := r.TS.UnixNano()
		n := len(mm.rs)
		if n == 0 || mm.rs[n-1].t < t {
			if n == cap(mm.rs) {
				// by half: append alone grows a long slice by a quarter
				// at a time, which copies a meter's readings about four
				// times over as a replay adds them; doubling would leave
				// up to half the room unused
				mm.rs = append(make([]memReading, 0, max(64, n+n/2)), mm.rs...)
			}
			mm.rs = append(mm.rs, memReading{t: t, kwh: r.KWh, ver: r.Version, iv: iv})
			continue
		}
		j := sort.Search(n, func(k int) bool { return mm.rs[k].t >= t })
		if mm.rs[j].t == t {
			if r.Version >= mm.rs[j].ver {
				mm.rs[j] = memReading{t: t, kwh: r.KWh, ver: r.Version, iv: iv}
			}
			continue
		}
		mm.rs = slices.Insert(mm.rs, j, memReading{t: t, kwh: r.KWh, ver: r.Version, iv: iv})
	}
}

// AddPurchases stores purchases; a purchase with a stored tx_id replaces it.
func (m *MemSeries) AddPurchases(ps ...schemas.Purchase) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range ps {
		m.purchases[p.TxID] = p
	}
}

// Len returns the number of stored readings.
func (m *MemSeries) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, mm := range m.meters {
		n += len(mm.rs)
	}
	return n
}

// MeterReadings implements Series, one chunk per meter in meter id order.
func (m *MemSeries) MeterReadings(ctx context.Context, from, to time.Time, fn func(string, []time.Time, []float64, []int32) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := make([]string, 0, len(m.meters))
	for id := range m.meters {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return m.each(ctx, ids, from, to, fn)
}

// each calls fn with the readings in (from, to] of each of ids, in order;
// the caller holds the read lock.
func (m *MemSeries) each(ctx context.Context, ids []string, from, to time.Time, fn func(string, []time.Time, []float64, []int32) error) error {
	f, e := from.UnixNano(), to.UnixNano()
	var ts []time.Time
	var kwh []float64
	var iv []int32
	for k, id := range ids {
		if k%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		mm := m.meters[id]
		if mm == nil {
			continue
		}
		i, j := mm.after(f), mm.after(e)
		if i >= j {
			continue
		}
		ts, kwh, iv = ts[:0], kwh[:0], iv[:0]
		for _, r := range mm.rs[i:j] {
			ts, kwh, iv = append(ts, time.Unix(0, r.t).UTC()), append(kwh, r.kwh), append(iv, r.iv)
		}
		if err := fn(id, ts, kwh, iv); err != nil {
			return err
		}
	}
	return nil
}

// MeterReadingsOf implements Series.
func (m *MemSeries) MeterReadingsOf(ctx context.Context, meterIDs []string, from, to time.Time, fn func(string, []time.Time, []float64, []int32) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := slices.Clone(meterIDs)
	slices.Sort(ids)
	return m.each(ctx, ids, from, to, fn)
}

// MeterTotalsBefore implements Series.
func (m *MemSeries) MeterTotalsBefore(ctx context.Context, meterIDs []string, t time.Time) (map[string]float64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := map[string]float64{}
	e := t.UnixNano()
	for _, id := range meterIDs {
		mm := m.meters[id]
		if mm == nil {
			continue
		}
		j := mm.after(e)
		if j == 0 {
			continue
		}
		var sum float64
		for _, r := range mm.rs[:j] {
			sum += r.kwh
		}
		out[id] = sum
	}
	return out, ctx.Err()
}

// Purchases implements Series, ordered by ts then tx_id.
func (m *MemSeries) Purchases(ctx context.Context, from, to time.Time) ([]schemas.Purchase, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []schemas.Purchase
	for _, p := range m.purchases {
		if !p.TS.Before(from) && p.TS.Before(to) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b schemas.Purchase) int {
		if c := a.TS.Compare(b.TS); c != 0 {
			return c
		}
		return strings.Compare(a.TxID, b.TxID)
	})
	return out, ctx.Err()
}

// ReadingSpan returns the earliest and latest reading times stored, zero
// when there are none.
func (m *MemSeries) ReadingSpan(context.Context) (from, to time.Time, err error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var lo, hi int64
	for _, mm := range m.meters {
		if len(mm.rs) == 0 {
			continue
		}
		if lo == 0 || mm.rs[0].t < lo {
			lo = mm.rs[0].t
		}
		hi = max(hi, mm.rs[len(mm.rs)-1].t)
	}
	if lo == 0 {
		return time.Time{}, time.Time{}, nil
	}
	return time.Unix(0, lo).UTC(), time.Unix(0, hi).UTC(), nil
}
