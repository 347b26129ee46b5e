package sim

import (
	"testing"

	"github.com/rigwatch/rigwatch/schemas"
)

// BenchmarkReadingsAt streams one step of the national-size demo grid.
func BenchmarkReadingsAt(b *testing.B) {
	s := newScenario(b, Config{Seed: 1, Feeders: 2000, MetersPerFeeder: 50, Days: 1})
	dst := make([]schemas.Reading, 0, s.ReadingsPerStepEstimate())
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for i := 0; i < b.N; i++ {
		dst = s.ReadingsAt(i%s.Steps(), dst)
		n += len(dst)
	}
	b.ReportMetric(float64(len(s.Meters())), "meters")
	b.ReportMetric(float64(n)/float64(b.N), "readings/step")
}

// BenchmarkNew builds the default scenario.
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		newScenario(b, Config{Seed: int64(i)})
	}
}
