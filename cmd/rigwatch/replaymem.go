package main

import (
	"context"
	"sync"
	"time"

	"github.com/rigwatch/rigwatch/detect"
	"github.com/rigwatch/rigwatch/schemas"
)

// replayed keeps the readings a replay stores in memory, up to a budget,
// so that detection after the replay reads them from there instead of
// reading everything back from ClickHouse (readings FINAL: for a few
// million readings about as much ClickHouse CPU again as storing them, and
// a second or more of decoding). It holds what ReplacingMergeTree keeps:
// the newest version of each (meter_id, ts) (the decoders leave ts in
// whole seconds, as ClickHouse's DateTime keeps it). Versions are unique
// per record (ingest stamps them), so the order in which the writers show
// it their batches does not matter.
type replayed struct {
	budget int64

	mu   sync.Mutex
	mem  *detect.MemSeries // nil once over budget
	seen int64             // readings shown to tap
}

func newReplayed(budget int64) *replayed {
	return &replayed{budget: budget, mem: detect.NewMemSeries()}
}

// tap is the replay's ingest.ReplayConfig.Tap.
func (r *replayed) tap(b *schemas.Batch) {
	if len(b.Readings) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen += int64(len(b.Readings))
	if r.mem == nil {
		return
	}
	if r.seen > r.budget {
		r.mem = nil // over budget: detection reads back from ClickHouse
		return
	}
	r.mem.AddReadings(b.Readings...)
}

// series returns the readings kept, or nil when there were more than the
// budget or the store holds rows beyond those the replay wrote (another
// writer, meanwhile). It is made only for a replay into a store that held
// no readings.
func (r *replayed) series(ctx context.Context, rt *runtime) (*detect.MemSeries, error) {
	r.mu.Lock()
	mem, seen := r.mem, r.seen
	r.mem = nil
	r.mu.Unlock()
	if mem == nil {
		return nil, nil
	}
	stored, err := rt.store.ReadingRows(ctx)
	if err != nil || stored > uint64(seen) {
		return nil, err
	}
	return mem, nil
}

// memSeries is the detector's view of a replay into an empty store: the
// readings from memory, the purchases (a small table) from the store.
type memSeries struct {
	*detect.MemSeries
	st storeSeries
}

func (s memSeries) Purchases(ctx context.Context, from, to time.Time) ([]schemas.Purchase, error) {
	return s.st.Purchases(ctx, from, to)
}
