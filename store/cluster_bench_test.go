package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
	"github.com/rigwatch/rigwatch/store"
)

// The figures behind docs/capacity.md: rigwatch's own write and read paths
// on one server and on the 2 × 2 test cluster (all on this machine), with
// the simulator's readings (40 feeders, 7 days of 15-minute readings:
// 1.3M rows).
//
//	go test -run '^$' -bench '^BenchmarkCluster' -benchtime 1x ./store/

func simReadings(b *testing.B) (*sim.Scenario, []schemas.Reading) {
	b.Helper()
	s, err := sim.New(sim.Config{Seed: 1, Days: 7})
	if err != nil {
		b.Fatal(err)
	}
	var out, buf []schemas.Reading
	for step := 0; step < s.Steps(); step++ {
		buf = s.ReadingsAt(step, buf[:0])
		out = append(out, buf...)
	}
	for i := range out {
		out[i].Version = uint64(i + 1)
	}
	return s, out
}

type benchTarget struct {
	name string
	open func(testing.TB) *store.Store
}

var benchTargets = []benchTarget{{"one-server", testenv.Store}, {"cluster-2x2", testenv.ClusterStore}}

// BenchmarkClusterWrite stores the readings in batches of 50,000, as the
// consumers do, and reports rows/s; on one server also the bytes on disk
// per reading after merging (a shard's replica holds its share at the same
// cost), and on the cluster each shard's share of the rows.
func BenchmarkClusterWrite(b *testing.B) {
	ctx := context.Background()
	_, rs := simReadings(b)
	for _, tg := range benchTargets {
		b.Run(tg.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				st := tg.open(b)
				b.StartTimer()
				start := time.Now()
				for at := 0; at < len(rs); at += 50_000 {
					if err := st.WriteBatch(ctx, &schemas.Batch{Readings: rs[at:min(at+50_000, len(rs))]}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(rs))/time.Since(start).Seconds(), "rows/s")
				b.StopTimer()
				if st.Cluster() == "" {
					if err := st.Conn().Exec(ctx, "OPTIMIZE TABLE "+st.Database()+".readings FINAL"); err != nil {
						b.Fatal(err)
					}
					var bytes, rows uint64
					if err := st.Conn().QueryRow(ctx, "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE active AND database = ? AND table = 'readings'", st.Database()).Scan(&bytes, &rows); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(bytes)/float64(rows), "disk-B/reading")
					continue
				}
				c := testenv.Cluster(b)
				for s, sh := range c.Servers {
					conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{sh[0].Addr}})
					if err != nil {
						b.Fatal(err)
					}
					var n uint64
					err = conn.QueryRow(ctx, "SELECT count() FROM "+st.Database()+".readings_local").Scan(&n)
					conn.Close()
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(n)/float64(len(rs)), fmt.Sprintf("share-shard-%d", s+1))
				}
			}
		})
	}
}

// BenchmarkClusterRead times the reads behind detection and the pages over
// the stored week: one day of every meter's readings (what detection reads
// to evaluate a day), every meter's energy over the week (FINAL over all
// rows), and one feeder's meters over the week (a feeder page).
func BenchmarkClusterRead(b *testing.B) {
	ctx := context.Background()
	s, rs := simReadings(b)
	var feeder []string
	for _, m := range s.Meters() {
		if m.FeederID == s.FeederID(0) {
			feeder = append(feeder, m.MeterID)
		}
	}
	for _, tg := range benchTargets {
		st := tg.open(b)
		for at := 0; at < len(rs); at += 50_000 {
			if err := st.WriteBatch(ctx, &schemas.Batch{Readings: rs[at:min(at+50_000, len(rs))]}); err != nil {
				b.Fatal(err)
			}
		}
		day := s.Start().Add(72 * time.Hour)
		for _, q := range []struct {
			name string
			run  func() (int, error)
		}{
			{"day-of-readings", func() (int, error) {
				n := 0
				err := st.MeterReadings(ctx, day, day.Add(24*time.Hour), func(_ string, ts []time.Time, _ []float64, _ []int32) error {
					n += len(ts)
					return nil
				})
				return n, err
			}},
			{"week-energy-per-meter", func() (int, error) {
				m, err := st.MeterTotals(ctx, nil, s.Start(), s.End())
				return len(m), err
			}},
			{"feeder-week", func() (int, error) {
				m, err := st.MeterHourly(ctx, feeder, s.Start(), s.End())
				return len(m), err
			}},
		} {
			b.Run(tg.name+"/"+q.name, func(b *testing.B) {
				var n int
				for i := 0; i < b.N; i++ {
					var err error
					if n, err = q.run(); err != nil || n == 0 {
						b.Fatal(n, err)
					}
				}
				b.ReportMetric(float64(n), "rows-returned")
			})
		}
	}
}
