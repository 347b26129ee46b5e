package detect

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
)

// clockSource is a MemSeries seen live: every reading that has arrived by
// now is stored, and the watermark is now.
type clockSource struct {
	*MemSeries
	now   time.Time
	first time.Time
}

func (c *clockSource) ReadingSpan(context.Context) (time.Time, time.Time, error) {
	return c.first, c.now, nil
}

func (c *clockSource) Watermark(context.Context, time.Time) (time.Time, error) { return c.now, nil }

// memMarks is ingest's side of Marks in memory: the horizon published,
// and the marks left since the last take.
type memMarks struct {
	mu      sync.Mutex
	horizon time.Time
	marks   []Mark
}

func (m *memMarks) Publish(_ context.Context, h time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h.After(m.horizon) {
		m.horizon = h
	}
	return nil
}

func (m *memMarks) Take(context.Context) ([]Mark, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.marks
	m.marks = nil
	return out, nil
}

// stored is ingest after storing r: it marks r if it ends at or before the
// horizon published.
func (m *memMarks) stored(r schemas.Reading) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !r.TS.After(m.horizon) {
		m.marks = append(m.marks, Mark{r.MeterID, r.TS, r.IntervalS})
	}
}

type memState struct {
	b  []byte
	to time.Time
}

func (m *memState) Load(context.Context) ([]byte, error) { return m.b, nil }
func (m *memState) Save(_ context.Context, to time.Time, b []byte) error {
	m.b, m.to = b, to
	return nil
}

// TestLiveRun drives live detection through a scenario whose readings
// arrive up to 20 minutes late (the lateness it waits for), with the
// detecting process replaced twice from the stored state: the alerts it
// emits, merged by id, equal one evaluation over the whole period, and it
// reads back about one row per reading stored.
func TestLiveRun(t *testing.T) {
	w := newWorld(t, sim.Config{Seed: 8, Preset: sim.PresetTheft, Feeders: 6, Days: 16})
	whole := w.evaluate(t, w.engine(t), w.s.Start(), w.s.End())
	arr := arrivals(w.s, time.Second, 20*time.Minute, 0.1, 0)
	src := &clockSource{MemSeries: NewMemSeries(), first: w.s.Start().Add(w.s.Interval())}
	src.AddPurchases(w.s.Purchases()...)
	marks := &memMarks{}
	state := &memState{}
	var merged alertLog
	ctx := context.Background()
	var rows int64
	newLive := func() (*Live, time.Time) {
		l := &Live{Engine: w.engine(t), Source: src, Marks: marks, State: state, Every: time.Second, Lateness: 20 * time.Minute,
			Emit: func(_ context.Context, _ time.Time, as []schemas.Alert) error {
				merged.add(as)
				return nil
			}}
		last, err := l.start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l, last
	}
	l, last := newLive()
	var pending time.Time
	next, stored := 0, 0
	end := w.s.End().Add(30 * time.Minute)
	for now := w.s.Start(); !now.After(end); now = now.Add(10 * time.Minute) {
		for ; next < len(arr) && !arr[next].at.After(now); next++ {
			src.AddReadings(arr[next].r)
			marks.stored(arr[next].r)
			stored++
		}
		src.now = now
		if d := now.Sub(w.s.Start()); d == 5*24*time.Hour || d == 11*24*time.Hour+10*time.Minute {
			rows += l.Engine.RowsRead()
			l, last = newLive() // the leader dies; another takes over
			pending = time.Time{}
			if !last.Equal(state.to) || last.IsZero() {
				t.Fatalf("taken over at %s, want the stored %s", last, state.to)
			}
		}
		for range 2 {
			if _, err := l.step(ctx, &last, &pending); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !last.Equal(w.s.End()) {
		t.Fatalf("evaluated up to %s, want %s", last, w.s.End())
	}
	live := merged.list()
	if sameAlerts(t, "live", whole, live) {
		t.Logf("%d alerts alike live and in one evaluation", len(whole))
	}
	rows += l.Engine.RowsRead()
	t.Logf("%d readings stored, %d rows read back", stored, rows)
}
