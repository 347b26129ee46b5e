package registry

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// peakRSSMB reads the process's peak resident set (VmHWM) from /proc.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkLoad415k loads the national registry: 415,000 rigs of 84
// operators at about 2,000 sites, in rig-id (not time) order, as the store
// would stream it at start. It reports the live heap the index holds and
// the process's peak RSS (generated input included).
func BenchmarkLoad415k(b *testing.B) {
	ls, rs, ms := GenerateNational(1, 415_000, 84)
	b.ReportAllocs()
	b.ResetTimer()
	var ix *Index
	for b.Loop() {
		ix = newIndex(b)
		if err := ix.ApplyLicenses(ls); err != nil {
			b.Fatal(err)
		}
		if err := ix.ApplyMeters(ms); err != nil {
			b.Fatal(err)
		}
		const batch = 10_000 // as a store would stream it
		for i := 0; i < len(rs); i += batch {
			if err := ix.ApplyRigs(rs[i:min(i+batch, len(rs))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	ls, rs, ms = nil, nil, nil
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(m.HeapAlloc)/(1<<20), "index-heap-MB")
	b.ReportMetric(peakRSSMB(), "peak-RSS-MB")
	st := ix.Stats(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b.ReportMetric(float64(st.ActiveRigs), "rigs")
	b.ReportMetric(st.RegisteredMW, "MW")
}

// BenchmarkLoad415kOneByOne applies the same rigs one ApplyRig at a time,
// the live-ingest path, in rig-id (not time) order.
func BenchmarkLoad415kOneByOne(b *testing.B) {
	ls, rs, ms := GenerateNational(1, 415_000, 84)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ix := newIndex(b)
		_ = ix.ApplyLicenses(ls)
		_ = ix.ApplyMeters(ms)
		for i := range rs {
			if err := ix.ApplyRig(rs[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCheck415k runs the registry checks over the national registry.
func BenchmarkCheck415k(b *testing.B) {
	ls, rs, ms := GenerateNational(1, 415_000, 84)
	ix := newIndex(b)
	_ = ix.ApplyLicenses(ls)
	_ = ix.ApplyMeters(ms)
	_ = ix.ApplyRigs(rs)
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if as := ix.Check(at); len(as) != 0 {
			b.Fatalf("%d alerts on a clean registry", len(as))
		}
	}
}

func nationalIndex(b *testing.B) (*Index, []string) {
	ls, rs, ms := GenerateNational(1, 415_000, 84)
	ix := newIndex(b)
	_ = ix.ApplyLicenses(ls)
	_ = ix.ApplyMeters(ms)
	_ = ix.ApplyRigs(rs)
	return ix, ix.Sites()
}

// BenchmarkSiteCapacityW is detection's per-reading lookup.
func BenchmarkSiteCapacityW(b *testing.B) {
	ix, sites := nationalIndex(b)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		ix.SiteCapacityW(sites[i%len(sites)], base.Add(time.Duration(i%600)*24*time.Hour))
		i++
	}
}

func TestSiteCapacityWDoesNotAllocate(t *testing.T) {
	ls, rs, ms := GenerateNational(2, 20_000, 10)
	ix := load(t, ls, rs)
	_ = ix.ApplyMeters(ms)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if n := testing.AllocsPerRun(1000, func() { ix.SiteCapacityW("SITE-0007", at) }); n != 0 {
		t.Errorf("SiteCapacityW allocates %v times per call", n)
	}
	if ix.SiteCapacityW("SITE-0007", at) == 0 {
		t.Error("site 7 has no capacity")
	}
}
