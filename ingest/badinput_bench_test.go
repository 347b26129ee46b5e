package ingest_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/localkafka"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// dirtyBench is the full scale: 1,000,000 inputs, 1% garbage of every kind
// under the default 1 MiB limit; one bad slot in 500 (20 in all) is a 10 MB
// value, and the CSV file has its broken quote at line 500,000.
// RIGWATCH_BENCH_INPUTS scales it.
func dirtyBench() dirtySpec {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("RIGWATCH_BENCH_INPUTS")); err == nil && v > 0 {
		n = v
	}
	return dirtySpec{N: n, Meters: 997, Limit: schemas.DefaultMaxMessageBytes, Oversize: 10 << 20, HugeEvery: 500, QuoteLine: n / 2}
}

// BenchmarkDirtyVsClean measures ingest of clean input and of input with 1%
// garbage of every kind, through file replay (CSV) and through the Kafka
// consumer (embedded broker, real ClickHouse), reporting rows/s of each and
// dirty/clean. Each run also checks that every reject and every good
// reading was stored. Run with -benchtime=1x; -count=6 for benchstat.
func BenchmarkDirtyVsClean(b *testing.B) {
	ctx := context.Background()
	sp := dirtyBench()

	b.Run("replay-csv", func(b *testing.B) {
		dirs := map[bool]string{}
		wants := map[bool]dirtyWant{}
		for _, clean := range []bool{true, false} {
			s := sp
			s.Clean = clean
			dirs[clean] = b.TempDir()
			wants[clean] = writeDirtyCSV(b, dirs[clean], s)
		}
		var took [2]time.Duration
		for i := 0; i < b.N; i++ {
			for _, k := range order() {
				clean := k == 0
				b.StopTimer()
				st := testenv.Store(b)
				quiesce(b, ctx, st)
				b.StartTimer()
				start := time.Now()
				if _, err := ingest.Replay(ctx, ingest.ReplayConfig{Dir: dirs[clean]}, st, nil, nil); err != nil {
					b.Fatal(err)
				}
				took[k] += time.Since(start)
				b.StopTimer()
				checkStored(b, ctx, st, wants[clean])
				b.StartTimer()
			}
		}
		report(b, sp.N, took)
	})

	b.Run("kafka", func(b *testing.B) {
		var msgs [2][]kafka.Message
		var wants [2]dirtyWant
		for k, clean := range []bool{true, false} {
			s := sp
			s.Clean = clean
			msgs[k], wants[k] = dirtyMessages(s)
		}
		var took [2]time.Duration
		for i := 0; i < b.N; i++ {
			for _, k := range order() {
				b.StopTimer()
				st := testenv.Store(b)
				// 10 MB values need a broker that takes them: raise its
				// 1 MB default, as an operator would.
				br, err := localkafka.StartWith(b.TempDir(), 0, []string{"b.readings", schemas.RejectsTopic},
					[]kfake.Opt{kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(32 << 20)})})
				if err != nil {
					b.Fatal(err)
				}
				produce(b, ctx, br.Addrs(), "b.readings", sp.Oversize, msgs[k])
				rejW := ingest.NewWriter(br.Addrs(), schemas.RejectsTopic, nil)
				quiesce(b, ctx, st)
				b.StartTimer()
				stats, d := consume(b, ctx, br.Addrs(), st, schemas.Readings, "b.readings", "g", 0, ingest.KafkaRejects{W: rejW}, nil)
				took[k] += d
				b.StopTimer()
				if stats.Consumed != int64(len(msgs[k])) || stats.Rejected != int64(wants[k].Bad) {
					b.Errorf("consumer %+v, want %d consumed, %d rejected", stats, len(msgs[k]), wants[k].Bad)
				}
				checkStored(b, ctx, st, wants[k])
				rejW.Close()
				br.Close()
				b.StartTimer()
			}
		}
		report(b, sp.N, took)
	})
}

// runs counts the runs of the benchmark's halves, across -count too.
var runs int

// order alternates which half, clean (0) or dirty (1), goes first, so that
// neither always runs in the other's wake.
func order() [2]int {
	runs++
	if runs%2 == 1 {
		return [2]int{0, 1}
	}
	return [2]int{1, 0}
}

// quiesce lets what an earlier run left behind finish before the next is
// timed: ClickHouse merging the parts it inserted, and the Go heap.
func quiesce(b *testing.B, ctx context.Context, st *store.Store) {
	b.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var n uint64
		if err := st.Conn().QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	runtime.GC()
}

// report turns the clean and dirty durations of b.N runs into rows/s.
func report(b *testing.B, n int, took [2]time.Duration) {
	clean := float64(n*b.N) / took[0].Seconds()
	dirty := float64(n*b.N) / took[1].Seconds()
	b.ReportMetric(clean, "clean-rows/s")
	b.ReportMetric(dirty, "dirty-rows/s")
	b.ReportMetric(dirty/clean, "dirty/clean")
	b.Logf("%d inputs: clean %.0f rows/s, dirty %.0f rows/s, ratio %.3f", n, clean, dirty, dirty/clean)
}
