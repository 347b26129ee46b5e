package detect

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestGridSlides checks the grid's flat rows against a plain map of
// meter-hours while meters join (over several chunks) and the grid slides
// forward, grows hour by hour (rows re-laid when they run out of room) and
// jumps ahead by more than it holds.
func TestGridSlides(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := newGrid(start, start.Add(10*time.Hour))
	want := map[[2]int64]float32{} // meter, Unix hour -> kWh
	rng := rand.New(rand.NewPCG(1, 2))
	meters := 0
	check := func(step string) {
		t.Helper()
		for mi := range meters {
			e, cov := g.eRow(int32(mi)), g.covRow(int32(mi))
			if len(e) != g.n || len(cov) != g.n {
				t.Fatalf("%s: meter %d has %d hours, the grid %d", step, mi, len(e), g.n)
			}
			for h := range g.n {
				at := g.t0 + int64(h)*hourS
				if w := want[[2]int64{int64(mi), at}]; e[h] != w || (w != 0) != (cov[h] != 0) {
					t.Fatalf("%s: meter %d at %s: %v kWh, %d s covered; want %v", step, mi, time.Unix(at, 0).UTC(), e[h], cov[h], w)
				}
			}
		}
	}
	// book puts one hourly reading ending at the end of every hour of the
	// grid from hour `from` on, for meters [lo, hi).
	book := func(lo, hi, from int) {
		for mi := lo; mi < hi; mi++ {
			id := fmt.Sprintf("m%05d", mi)
			for h := from; h < g.n; h++ {
				end := time.Unix(g.t0+int64(h+1)*hourS, 0).UTC()
				v := float64(rng.IntN(1000) + 1)
				g.add(id, []time.Time{end}, []float64{v}, []int32{3600})
				g.forget(int32(mi))
				want[[2]int64{int64(mi), end.Unix() - hourS}] = float32(v)
			}
		}
		meters = max(meters, hi)
	}
	book(0, chunkMeters+10, 0)
	check("first load")
	for step := range 30 {
		from, to := time.Unix(g.t0, 0).UTC(), time.Unix(g.t0+int64(g.n)*hourS, 0).UTC()
		switch {
		case step%7 == 6: // jump beyond what the grid holds
			from, to = to.Add(5*time.Hour), to.Add(20*time.Hour)
		case step%3 == 0: // grow without dropping
			to = to.Add(time.Hour)
		default:
			from, to = from.Add(time.Hour), to.Add(2*time.Hour)
		}
		old := g.n
		kept := max(0, old-int((from.Unix()-g.t0)/hourS))
		g.slide(from, to)
		check(fmt.Sprintf("step %d after the slide", step))
		book(0, meters, min(kept, g.n))
		if step == 10 {
			book(meters, 2*chunkMeters+3, 0) // a third chunk
		}
		check(fmt.Sprintf("step %d", step))
	}
	// A grid that read a long span (a fresh one on a backlog) and then
	// slides to a short one by whole hours is laid out anew, with a day's
	// room, instead of keeping rows as long as the backlog.
	g.slide(time.Unix(g.t0, 0).UTC(), time.Unix(g.t0+int64(g.n+100)*hourS, 0).UTC())
	book(0, meters, g.n-100)
	check("grown by 100 hours")
	long := g.stride
	from := time.Unix(g.t0+int64(g.n-30)*hourS, 0).UTC()
	g.slide(from, from.Add(31*time.Hour))
	check("slid to the last 30 hours and a new one")
	if g.stride != strideFor(31+24) || g.stride >= long {
		t.Fatalf("rows of %d hours (before %d) for a grid of %d: want %d", g.stride, long, g.n, strideFor(31+24))
	}
	book(0, meters, 30)
	check("the new hour")
}
