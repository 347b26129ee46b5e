package ingest_test

import (
	"context"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
)

var (
	scenarioOnce sync.Once
	scenarioDir  string
	scenarioRows int64
	scenarioErr  error
)

// scenario writes the simulator's default grid (40 feeders, 14 days,
// about 2.3M readings) once per test binary.
func scenario(b *testing.B) (string, int64) {
	scenarioOnce.Do(func() {
		scenarioDir, scenarioErr = os.MkdirTemp("", "rigwatch-bench-")
		if scenarioErr != nil {
			return
		}
		s, err := sim.New(sim.Config{Seed: 1})
		if err != nil {
			scenarioErr = err
			return
		}
		sum, err := sim.WriteDir(context.Background(), s, scenarioDir, sim.WriteOptions{})
		scenarioErr = err
		scenarioRows = int64(sum.Readings)
	})
	if scenarioErr != nil {
		b.Fatal(scenarioErr)
	}
	return scenarioDir, scenarioRows
}

// BenchmarkReplay measures file replay into a real ClickHouse: rows/s over
// the whole directory (CSV, gzip, decode, validate, insert).
func BenchmarkReplay(b *testing.B) {
	dir, _ := scenario(b)
	ctx := context.Background()
	b.ResetTimer()
	var rows int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := testenv.Store(b)
		b.StartTimer()
		sum, err := ingest.Replay(ctx, ingest.ReplayConfig{Dir: dir, NewInserter: func() ingest.Inserter { return st.Inserter() }}, st, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range sum.Streams {
			rows += s.Accepted + s.Rejected
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// discard is a Writer that stores nothing.
type discard struct{}

func (discard) WriteBatch(context.Context, *schemas.Batch) error { return nil }

// BenchmarkReplayDecode measures replay's own work, without ClickHouse:
// reading, gunzipping, splitting, decoding and validating the scenario's
// files into batches. cpu-ns/row (user and system CPU of the process, all
// goroutines) is what replay costs its host per row on top of the inserts,
// and holds better than ns/row on a busy machine.
func BenchmarkReplayDecode(b *testing.B) {
	dir, _ := scenario(b)
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	var rows int64
	for i := 0; i < b.N; i++ {
		sum, err := ingest.Replay(ctx, ingest.ReplayConfig{Dir: dir}, discard{}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range sum.Streams {
			rows += s.Accepted + s.Rejected
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(rows), "cpu-ns/row")
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// cpuTime returns the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
