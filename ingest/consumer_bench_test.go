package ingest_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/rigwatch/rigwatch/internal/localkafka"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
)

// BenchmarkConsumerBacklog measures the readings consumer draining a
// backlog of 1,000,000 small JSON readings (RIGWATCH_BENCH_INPUTS scales
// it) from six partitions of the embedded broker into a real ClickHouse,
// a fresh group each run. cpu-ns/row is the process's CPU per row, the
// broker's included: run with -cpuprofile to tell them apart.
func BenchmarkConsumerBacklog(b *testing.B) {
	ctx := context.Background()
	sp := dirtyBench()
	sp.Clean = true
	msgs, want := dirtyMessages(sp)
	br, err := localkafka.Start("", 0, "b.backlog")
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	produce(b, ctx, br.Addrs(), "b.backlog", 0, msgs)
	msgs = nil
	b.ReportAllocs()
	var rows int64
	var cpu int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := testenv.Store(b)
		quiesce(b, ctx, st)
		cpu0 := cpuTime()
		b.StartTimer()
		stats, _ := consume(b, ctx, br.Addrs(), st, schemas.Readings, "b.backlog", "g"+strconv.Itoa(i), 0, nil, nil)
		b.StopTimer()
		cpu += int64(cpuTime() - cpu0)
		rows += stats.Stored
		checkStored(b, ctx, st, want)
		b.StartTimer()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(cpu)/float64(rows), "cpu-ns/row")
}
