package detect

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
)

// simSeries is a Series that computes readings from the scenario on demand,
// so that a national-size grid needs no reading storage.
type simSeries struct{ s *sim.Scenario }

func (x simSeries) MeterReadings(ctx context.Context, from, to time.Time, fn func(string, []time.Time, []float64, []int32) error) error {
	iv := x.s.Interval()
	var buf []schemas.Reading
	// Readings come a meter at a time, as from a store ordered by meter
	// and time: a chunk per meter for every block of steps.
	const block = 8
	type chunk struct {
		ts  []time.Time
		kwh []float64
		iv  []int32
	}
	var order []string
	chunks := map[string]*chunk{}
	flush := func() error {
		for _, id := range order {
			c := chunks[id]
			if err := fn(id, c.ts, c.kwh, c.iv); err != nil {
				return err
			}
			c.ts, c.kwh, c.iv = c.ts[:0], c.kwh[:0], c.iv[:0]
		}
		order = order[:0]
		return ctx.Err()
	}
	n := 0
	last := map[string]int{}
	for step := 0; step < x.s.Steps(); step++ {
		end := x.s.Start().Add(iv * time.Duration(step+1))
		if !end.After(from) || end.After(to) {
			continue
		}
		buf = x.s.ReadingsAt(step, buf)
		clear(last)
		for i, r := range buf {
			last[r.MeterID] = i // corrections come after the first record
		}
		for i := range buf {
			r := &buf[i]
			if last[r.MeterID] != i {
				continue
			}
			c := chunks[r.MeterID]
			if c == nil {
				c = &chunk{}
				chunks[r.MeterID] = c
			}
			if len(c.ts) == 0 {
				order = append(order, r.MeterID)
			}
			c.ts, c.kwh, c.iv = append(c.ts, r.TS), append(c.kwh, r.KWh), append(c.iv, r.IntervalS)
		}
		if n++; n%block == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (x simSeries) ReadingSpan(context.Context) (time.Time, time.Time, error) {
	return x.s.Start().Add(x.s.Interval()), x.s.End(), nil
}

func (x simSeries) MeterReadingsOf(ctx context.Context, ids []string, from, to time.Time, fn func(string, []time.Time, []float64, []int32) error) error {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	return x.MeterReadings(ctx, from, to, func(id string, ts []time.Time, kwh []float64, iv []int32) error {
		if !want[id] {
			return nil
		}
		return fn(id, ts, kwh, iv)
	})
}

func (x simSeries) Purchases(ctx context.Context, from, to time.Time) ([]schemas.Purchase, error) {
	var out []schemas.Purchase
	for _, p := range x.s.Purchases() {
		if !p.TS.Before(from) && p.TS.Before(to) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (x simSeries) MeterTotalsBefore(ctx context.Context, meterIDs []string, t time.Time) (map[string]float64, error) {
	want := map[string]bool{}
	for _, id := range meterIDs {
		want[id] = true
	}
	out := map[string]float64{}
	err := x.MeterReadings(ctx, time.Unix(0, 0), t, func(id string, _ []time.Time, kwh []float64, _ []int32) error {
		if want[id] {
			out[id] += kwh[0]
		}
		return nil
	})
	return out, err
}

// BenchmarkEvaluateDay measures one live evaluation of a simulated day on a
// national-size grid (2,000 feeders, about 100,000 meters) after the
// engine has evaluated the days before it; the readings are computed by the
// simulator while read, and the read_s metric gives that share.
// Run: go test ./detect/ -run '^$' -bench EvaluateDay -benchtime 1x -benchmem
func BenchmarkEvaluateDay(b *testing.B) {
	feeders, look := 2000, 2
	if testing.Short() {
		feeders = 200
	}
	s, reg := simFleet(b, sim.Config{Seed: 1, Feeders: feeders, Days: look + 1 + b.N})
	src := simSeries{s}
	e, err := New(Config{Lookback: time.Duration(look) * 24 * time.Hour}, reg, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	day := 24 * time.Hour
	from := s.Start().Add(time.Duration(look) * day)
	if _, err := e.Evaluate(ctx, src, s.Start(), from); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	n := 0
	src.MeterReadings(ctx, from.Add(-time.Duration(look)*day), from.Add(day), func(string, []time.Time, []float64, []int32) error { n++; return nil })
	read := time.Since(t0)
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		as, err := e.Evaluate(ctx, src, from, from.Add(day))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(as)), "alerts")
		from = from.Add(day)
	}
	b.StopTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(len(s.Meters())), "meters")
	b.ReportMetric(float64(n), "readings_read")
	b.ReportMetric(read.Seconds(), "read_s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap_MB")
}
