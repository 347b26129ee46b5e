package detect

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/sim"
)

// countingSeries counts the readings a Series hands out (the rows read
// back) and the time the Series itself takes to produce them: a simulated
// fleet computes its readings, a store reads them, and neither is the
// engine's cost.
type countingSeries struct {
	Series
	rows   int64
	source time.Duration
}

func (c *countingSeries) count(call func(fn func(string, []time.Time, []float64, []int32) error) error, fn func(string, []time.Time, []float64, []int32) error) error {
	start := time.Now()
	var inFn time.Duration
	err := call(func(id string, ts []time.Time, kwh []float64, iv []int32) error {
		t := time.Now()
		c.rows += int64(len(ts))
		err := fn(id, ts, kwh, iv)
		inFn += time.Since(t)
		return err
	})
	c.source += time.Since(start) - inFn
	return err
}

func (c *countingSeries) MeterReadings(ctx context.Context, from, to time.Time, fn func(string, []time.Time, []float64, []int32) error) error {
	return c.count(func(fn func(string, []time.Time, []float64, []int32) error) error {
		return c.Series.MeterReadings(ctx, from, to, fn)
	}, fn)
}

func (c *countingSeries) MeterReadingsOf(ctx context.Context, ids []string, from, to time.Time, fn func(string, []time.Time, []float64, []int32) error) error {
	return c.count(func(fn func(string, []time.Time, []float64, []int32) error) error {
		return c.Series.MeterReadingsOf(ctx, ids, from, to, fn)
	}, fn)
}

func (c *countingSeries) ReadingSpan(ctx context.Context) (time.Time, time.Time, error) {
	return c.Series.(spanner).ReadingSpan(ctx)
}

// prefetched serves one span's readings from memory, computed before the
// engine asks for them: the event hour about to be timed, so that neither
// the simulator's work nor the garbage it leaves lands in the engine's
// time. Every other span goes to the Series.
type prefetched struct {
	Series
	from, to time.Time
	ids      []string
	ts       [][]time.Time
	kwh      [][]float64
	iv       [][]int32
	hits     int // spans served from memory
}

func (p *prefetched) fetch(ctx context.Context, from, to time.Time) error {
	p.from, p.to = from, to
	p.ids, p.ts, p.kwh, p.iv = p.ids[:0], p.ts[:0], p.kwh[:0], p.iv[:0]
	return p.Series.MeterReadings(ctx, from, to, func(id string, ts []time.Time, kwh []float64, iv []int32) error {
		p.ids, p.ts = append(p.ids, id), append(p.ts, slices.Clone(ts))
		p.kwh, p.iv = append(p.kwh, slices.Clone(kwh)), append(p.iv, slices.Clone(iv))
		return nil
	})
}

func (p *prefetched) MeterReadings(ctx context.Context, from, to time.Time, fn func(string, []time.Time, []float64, []int32) error) error {
	if !from.Equal(p.from) || !to.Equal(p.to) {
		return p.Series.MeterReadings(ctx, from, to, fn)
	}
	p.hits++
	for i, id := range p.ids {
		if err := fn(id, p.ts[i], p.kwh[i], p.iv[i]); err != nil {
			return err
		}
	}
	return nil
}

func (p *prefetched) ReadingSpan(ctx context.Context) (time.Time, time.Time, error) {
	return p.Series.(spanner).ReadingSpan(ctx)
}

// BenchmarkLiveHour measures live evaluation one event hour at a time on a
// grid of about 100,000 meters (2,000 feeders), after the engine has
// evaluated a lookback's worth of days: the engine's mean and slowest hour
// of a day (the simulated source computes each hour's readings before the
// hour is timed: its time is source_s/hour), and the rows read back per
// reading stored. Both lookbacks, 7 and 28 days, run on one simulated
// fleet of 30 days and evaluate its last day live, so that the two differ
// in their lookback alone (not in the fleet's incidents, nor in the size
// of the simulator beside them):
//
//	go test ./detect/ -run '^$' -bench LiveHour -benchtime 1x -timeout 60m
//
// RIGWATCH_BENCH_FEEDERS sizes the grid (default 2000).
func BenchmarkLiveHour(b *testing.B) {
	feeders := 2000
	if v, err := strconv.Atoi(os.Getenv("RIGWATCH_BENCH_FEEDERS")); err == nil {
		feeders = v
	}
	const days = 30
	s, reg := simFleet(b, sim.Config{Seed: 1, Feeders: feeders, Days: days})
	for _, look := range []int{7, 28} {
		b.Run("lookback="+strconv.Itoa(look)+"d", func(b *testing.B) {
			pre := &prefetched{Series: simSeries{s}}
			src := &countingSeries{Series: pre}
			e, err := New(Config{Lookback: time.Duration(look) * 24 * time.Hour}, reg, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			// the fleet's last day live, after the lookback and a day
			from := s.Start().Add((days - 1) * 24 * time.Hour)
			if _, err := e.Evaluate(ctx, src, from.Add(-time.Duration(look+1)*24*time.Hour), from); err != nil {
				b.Fatal(err)
			}
			src.rows, src.source = 0, 0
			runtime.GC()
			// RIGWATCH_BENCH_CPUPROFILE profiles the live hours alone.
			if path := os.Getenv("RIGWATCH_BENCH_CPUPROFILE"); path != "" {
				f, err := os.Create(strings.ReplaceAll(path, "LOOK", strconv.Itoa(look)))
				if err != nil {
					b.Fatal(err)
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					b.Fatal(err)
				}
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
			var took []time.Duration
			var fetching time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for h := 0; h < 24; h++ {
					b.StopTimer()
					f0 := time.Now()
					if err := pre.fetch(ctx, from, from.Add(time.Hour)); err != nil {
						b.Fatal(err)
					}
					fetching += time.Since(f0)
					b.StartTimer()
					t0, s0 := time.Now(), src.source
					if _, err := e.Evaluate(ctx, src, from, from.Add(time.Hour)); err != nil {
						b.Fatal(err)
					}
					took = append(took, time.Since(t0)-(src.source-s0))
					from = from.Add(time.Hour)
				}
			}
			b.StopTimer()
			b.Logf("engine time by event hour: %v", took)
			if pre.hits != len(took) {
				b.Errorf("%d of %d event hours read from the prefetched readings", pre.hits, len(took))
			}
			var sum time.Duration
			for _, d := range took {
				sum += d
			}
			stored := float64(len(s.Meters())) * 4 * float64(len(took))
			// what the engine (with the registry and the simulator beside
			// it) holds, garbage collected
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			runtime.KeepAlive(e)
			b.ReportMetric(float64(len(s.Meters())), "meters")
			b.ReportMetric((sum / time.Duration(len(took))).Seconds(), "s/hour")
			b.ReportMetric(((fetching + src.source) / time.Duration(len(took))).Seconds(), "source_s/hour")
			b.ReportMetric(slices.Max(took).Seconds(), "max_s/hour")
			b.ReportMetric(float64(src.rows)/stored, "rows_read/stored")
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap_MB")
		})
	}
}
