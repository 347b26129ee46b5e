package store_test

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/store"
)

// peakRSSMB reads the process's peak resident set (VmHWM) from /proc.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux >= 4.0),
// so the peak measured excludes generating the input.
func resetPeakRSS(tb testing.TB) {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		tb.Fatalf("cannot reset the peak RSS: %v", err)
	}
}

// waitMerges waits until the server runs no merge in s's database, as at a
// start some time after the last load: the rebuild is timed against an idle
// server, not one still merging the parts the load wrote.
func waitMerges(tb testing.TB, s *store.Store) {
	tb.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for {
		var n uint64
		if err := s.Conn().QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = ?", s.Database()).Scan(&n); err != nil {
			tb.Fatalf("cannot read system.merges: %v", err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d merges still running in %s after a minute", n, s.Database())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkRegistryLoad415k is the national load: 415,000 rigs of 84
// operators (GenerateNational) as replay files, replayed into ClickHouse
// in batches of 50,000 (rigwatch replay's default) and, through the batch hook, into the in-memory registry. It reports the
// wall time and this process's peak RSS for that load (the ClickHouse
// server is a separate process), then the time to rebuild a fresh registry
// from ClickHouse as rigwatch does at start.
//
//	go test ./store/ -run '^$' -bench RegistryLoad415k -benchtime 1x
func BenchmarkRegistryLoad415k(b *testing.B) {
	const rigs, operators = 415_000, 84
	dir := b.TempDir()
	ls, rs, ms := registry.GenerateNational(1, rigs, operators)
	testenv.WriteRegistryCSV(b, dir, ls, rs, ms)
	ls, rs, ms = nil, nil, nil
	ctx := context.Background()

	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		s := testenv.Store(b)
		resetPeakRSS(b)
		b.StartTimer()

		start := time.Now()
		ix, err := registry.New(registry.Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		sum, err := ingest.Replay(ctx, ingest.ReplayConfig{Dir: dir, BatchSize: 50_000}, s, ix.Hook(), nil)
		if err != nil {
			b.Fatal(err)
		}
		load := time.Since(start)
		peak := peakRSSMB()

		b.StopTimer()
		for _, ss := range sum.Streams {
			if ss.Rejected > 0 {
				b.Fatalf("%d %s rejected: %v", ss.Rejected, ss.Stream, ss.Reasons)
			}
		}
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if st := ix.Stats(at); st.ActiveRigs != rigs {
			b.Fatalf("hook loaded %d active rigs, want %d", st.ActiveRigs, rigs)
		}
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		b.ReportMetric(float64(m.HeapAlloc)/(1<<20), "index-heap-MB")
		runtime.KeepAlive(ix)
		ix = nil
		waitMerges(b, s)
		resetPeakRSS(b)
		b.StartTimer()

		start = time.Now()
		fresh, err := registry.New(registry.Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.LoadRegistry(ctx, fresh); err != nil {
			b.Fatal(err)
		}
		rebuild := time.Since(start)
		rebuildPeak := peakRSSMB()

		b.StopTimer()
		st := fresh.Stats(at)
		if st.ActiveRigs != rigs || st.Operators != operators {
			b.Fatalf("rebuilt %d active rigs of %d operators, want %d of %d", st.ActiveRigs, st.Operators, rigs, operators)
		}
		b.ReportMetric(load.Seconds(), "load-s")
		b.ReportMetric(peak, "load-peak-RSS-MB")
		b.ReportMetric(rebuild.Seconds(), "rebuild-s")
		b.ReportMetric(rebuildPeak, "rebuild-peak-RSS-MB")
		b.ReportMetric(st.RegisteredMW, "MW")
		b.StartTimer()
	}
}
