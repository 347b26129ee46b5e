package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// BenchmarkFeederTotals times the feeder ranking's query over a national
// day of stored hours (20,000 feeders, 24 hours written an hour at a time,
// a tenth of each hour rewritten in the next, as late readings do), against
// the same totals from the latest versions found by argMax over a GROUP BY
// of every feeder-hour, which it replaced: medians of five, and whether
// the two agree.
//
//	go test -run '^$' -bench FeederTotals -benchtime 1x ./store/
func BenchmarkFeederTotals(b *testing.B) {
	st := testenv.Store(b)
	ctx := context.Background()
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	const feeders = 20000
	id := func(f int) string { return fmt.Sprintf("FDR-%05d", f) }
	for h := range 24 {
		at := t0.Add(time.Duration(h) * time.Hour)
		fs := make([]schemas.FeederHour, 0, feeders)
		for f := range feeders {
			fs = append(fs, schemas.FeederHour{FeederID: id(f), Hour: at, HeadKWh: float64(f%100 + h), MetersKWh: float64(f%90 + h), Meters: 50, Complete: f%7 != 0})
		}
		if err := st.WriteHours(ctx, fs, nil); err != nil {
			b.Fatal(err)
		}
		if h == 0 {
			continue
		}
		var again []schemas.FeederHour
		for f := 0; f < feeders; f += 10 {
			again = append(again, schemas.FeederHour{FeederID: id(f), Hour: at.Add(-time.Hour), HeadKWh: 7, MetersKWh: 3, Meters: 50, Complete: true})
		}
		if err := st.WriteHours(ctx, again, nil); err != nil {
			b.Fatal(err)
		}
	}
	from, to := t0, t0.Add(24*time.Hour)
	// the query it replaced
	byArgMax := func() (map[string]store.FeederTotal, error) {
		rows, err := st.Conn().Query(ctx, "SELECT feeder_id, sum(h), sum(m), count(), sum(c), max(n) FROM "+
			"(SELECT feeder_id, hour, argMax(head_kwh, version) AS h, argMax(meters_kwh, version) AS m, argMax(meters, version) AS n, argMax(complete, version) AS c FROM "+
			st.Database()+".feeder_hours WHERE hour >= ? AND hour < ? GROUP BY feeder_id, hour) GROUP BY feeder_id", from, to)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[string]store.FeederTotal{}
		for rows.Next() {
			var id string
			var t store.FeederTotal
			var n, c uint64
			var m uint32
			if err := rows.Scan(&id, &t.HeadKWh, &t.MetersKWh, &n, &c, &m); err != nil {
				return nil, err
			}
			t.Hours, t.Complete, t.Meters = int(n), int(c), int(m)
			out[id] = t
		}
		return out, rows.Err()
	}
	var now, before []time.Duration
	b.ResetTimer()
	for range b.N {
		for range 5 {
			start := time.Now()
			got, err := st.FeederTotals(ctx, from, to)
			if err != nil {
				b.Fatal(err)
			}
			now = append(now, time.Since(start))
			start = time.Now()
			want, err := byArgMax()
			if err != nil {
				b.Fatal(err)
			}
			before = append(before, time.Since(start))
			if len(got) != feeders || len(want) != feeders {
				b.Fatalf("%d and %d feeders, want %d", len(got), len(want), feeders)
			}
			for k, v := range want {
				if got[k] != v {
					b.Fatalf("%s: %+v, by argMax %+v", k, got[k], v)
				}
			}
		}
	}
	b.StopTimer()
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return d[len(d)/2].Seconds()
	}
	b.ReportMetric(median(now), "s/query")
	b.ReportMetric(median(before), "argmax_s/query")
}
