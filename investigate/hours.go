package investigate

import (
	"context"
	"sync"
	"time"

	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// The pages read the hours the detector derived and stored (feeder_hours,
// site_hours) wherever they cover the window, and raw readings only
// outside: before the detector's span, and in the tail it has not
// evaluated yet. The stored hours are exact under redelivery (they are
// derived from readings FINAL) and under corrections (a reading stored
// behind the detector is marked, its hours re-derived and stored again).

// storedHours returns the part [a, b) of the window (from, to] that the
// detector's stored hours answer: the whole hours inside both the window
// and the span published by the detector; ok is false when there is none.
func (q *Queries) storedHours(ctx context.Context, from, to time.Time) (a, b time.Time, ok bool, err error) {
	if q.Raw {
		return a, b, false, nil
	}
	hf, ht, err := q.Store.HoursSpan(ctx)
	if err != nil || ht.IsZero() {
		return a, b, false, err
	}
	a, b = ceilHour(from), to.UTC().Truncate(time.Hour)
	if a.Before(hf) {
		a = hf
	}
	if b.After(ht) {
		b = ht
	}
	return a, b, a.Before(b), nil
}

// ceilHour returns the first whole hour at or after t.
func ceilHour(t time.Time) time.Time {
	h := t.UTC().Truncate(time.Hour)
	if h.Before(t) {
		h = h.Add(time.Hour)
	}
	return h
}

// window is a part (from, to] of a page's window.
type window struct{ from, to time.Time }

// outside returns the parts of (from, to] outside [a, b): what raw
// readings must answer.
func outside(from, to, a, b time.Time) []window {
	var out []window
	if from.Before(a) {
		out = append(out, window{from, a})
	}
	if b.Before(to) {
		out = append(out, window{b, to})
	}
	return out
}

// siteMeterHours returns the hourly energy of site meters ids (the meters
// of sites) over (from, to]: from the detector's site hours where they
// cover the window, from raw readings elsewhere.
func (q *Queries) siteMeterHours(ctx context.Context, sites, ids []string, from, to time.Time) ([]store.MeterHour, error) {
	raw := []window{{from, to}}
	var out []store.MeterHour
	a, b, ok, err := q.storedHours(ctx, from, to)
	if err != nil {
		return nil, err
	}
	if ok && len(ids) > 0 {
		shs, err := q.Store.SiteHours(ctx, sites, a, b)
		if err != nil {
			return nil, err
		}
		if len(shs) > 0 {
			want := make(map[string]bool, len(ids))
			for _, id := range ids {
				want[id] = true
			}
			for _, h := range shs {
				if want[h.MeterID] {
					out = append(out, store.MeterHour{MeterID: h.MeterID, Hour: h.Hour, KWh: h.KWh})
				}
			}
			raw = outside(from, to, a, b)
		}
	}
	for _, w := range raw {
		hs, err := q.Store.MeterHourly(ctx, ids, w.from, w.to)
		if err != nil {
			return nil, err
		}
		out = append(out, hs...)
	}
	return out, nil
}

// feederHours returns feeder id's hourly balance over (from, to]: the
// detector's feeder hours where they cover the window, and sums of the
// raw readings of its meters (role tells the head) elsewhere.
func (q *Queries) feederHours(ctx context.Context, id string, ids []string, role map[string]string, from, to time.Time) (map[time.Time]*FeederHour, error) {
	byHour := map[time.Time]*FeederHour{}
	raw := []window{{from, to}}
	a, b, ok, err := q.storedHours(ctx, from, to)
	if err != nil {
		return nil, err
	}
	if ok {
		fhs, err := q.Store.FeederHours(ctx, []string{id}, a, b)
		if err != nil {
			return nil, err
		}
		if len(fhs) > 0 {
			for _, fh := range fhs {
				byHour[fh.Hour] = &FeederHour{Hour: fh.Hour, HeadKWh: fh.HeadKWh, MetersKWh: fh.MetersKWh}
			}
			raw = outside(from, to, a, b)
		}
	}
	for _, w := range raw {
		hours, err := q.Store.MeterHourly(ctx, ids, w.from, w.to)
		if err != nil {
			return nil, err
		}
		for _, mh := range hours {
			fh := byHour[mh.Hour]
			if fh == nil {
				fh = &FeederHour{Hour: mh.Hour}
				byHour[mh.Hour] = fh
			}
			if role[mh.MeterID] == schemas.RoleFeederHead {
				fh.HeadKWh += mh.KWh
			} else {
				fh.MetersKWh += mh.KWh
			}
		}
	}
	return byHour, nil
}

// summaryCache holds every feeder's summary at one instant, for one
// registry, until its meters change: the ranking asks for all 20,000 of a
// national grid (0.4 s), mostly at the same instant, the last hour
// detection evaluated.
type summaryCache struct {
	mu      sync.Mutex
	changes uint64
	at      time.Time
	by      map[string]registry.FeederSummary
}

var summaryCaches sync.Map // *registry.Index -> *summaryCache

// feederSummaries returns the summaries of feeders fids at t.
func feederSummaries(ix *registry.Index, fids []string, t time.Time) map[string]registry.FeederSummary {
	v, _ := summaryCaches.LoadOrStore(ix, &summaryCache{})
	c := v.(*summaryCache)
	c.mu.Lock()
	defer c.mu.Unlock()
	meters, _ := ix.Changes()
	if c.by == nil || c.changes != meters || !c.at.Equal(t) || len(c.by) != len(fids) {
		c.by = make(map[string]registry.FeederSummary, len(fids))
		for _, f := range fids {
			c.by[f] = ix.FeederSummaryAt(f, t)
		}
		c.changes, c.at = meters, t
	}
	return c.by
}
