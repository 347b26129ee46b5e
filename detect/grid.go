package detect

import (
	"math"
	"slices"
	"strings"
	"time"
)

// grid holds every meter's energy per clock hour over [t0, t0+n hours):
// the sum of its readings' energy that falls in the hour (an interval that
// straddles hours is shared in proportion) and how many seconds of the hour
// the readings cover, and how much the readings within it jitter. Hourly
// sums keep 100,000 meters x 8 days in ~200 MB.
//
// The hours live in flat arrays, a row of stride hours per meter, in chunks
// of chunkMeters meters: no object per meter for the collector to follow,
// no slice header per meter and row (a million meters), and a longer grid
// re-lays one chunk at a time. eRow, covRow, dsqRow and dnRow return a
// meter's n hours.
type grid struct {
	t0     int64 // Unix seconds, on the hour
	n      int
	stride int // hours a row holds, n and room to grow
	idx    map[string]int32
	ids    []string
	chunks []gridChunk
	// The reading before the next one read of each meter, for its
	// difference: set before each read, advanced as it goes.
	lastTS  []int64
	lastKWh []float64
	lastIV  []int32
	// seen is the end of each meter's latest reading read (Unix s): a
	// meter none of whose readings end inside the grid is not in it.
	seen []int64
	// The latest reading of each meter ending at or before anchorAt: the
	// predecessor of the first one the next incremental read books.
	anchorAt int64
	aTS      []int64
	aKWh     []float64
	aIV      []int32
}

// gridChunk holds the rows of up to chunkMeters meters, stride hours each.
type gridChunk struct {
	e   []float32 // kWh by meter, hour
	cov []uint16  // seconds covered by meter, hour
	// Successive differences of the mean kW of back-to-back readings of
	// equal length, booked to the hour the later reading ends in: their
	// sum of squares and count. Half their mean square estimates the
	// variance of the metered power around its slowly moving level (von
	// Neumann's estimator), which a ramp or daily cycle hardly inflates:
	// the flatness of a load measured inside the hour.
	dsq []float32
	dn  []uint8
}

const chunkMeters = 4096

func (g *grid) row(mi int32) (*gridChunk, int) {
	return &g.chunks[mi/chunkMeters], int(mi%chunkMeters) * g.stride
}

func (g *grid) eRow(mi int32) []float32 {
	c, o := g.row(mi)
	return c.e[o : o+g.n : o+g.n]
}

func (g *grid) covRow(mi int32) []uint16 {
	c, o := g.row(mi)
	return c.cov[o : o+g.n : o+g.n]
}

func (g *grid) dsqRow(mi int32) []float32 {
	c, o := g.row(mi)
	return c.dsq[o : o+g.n : o+g.n]
}

func (g *grid) dnRow(mi int32) []uint8 {
	c, o := g.row(mi)
	return c.dn[o : o+g.n : o+g.n]
}

// strideFor is the row length for n hours: room for four more. A live
// grid grows an hour an evaluation and drops a day once a day, so it is
// re-laid every four hours only until it first reaches its longest (the end
// of a local day) and never after; spare hours beyond that would stay
// unused for good, 11 MB each at a million meters (room for n/16 more, as
// before, left 47 of them in a 29-day grid).
func strideFor(n int) int { return n + 4 }

const hourS = 3600

func newGrid(from, to time.Time) *grid {
	t0 := from.Unix()
	n := int((to.Unix() - t0) / hourS)
	return &grid{t0: t0, n: n, stride: strideFor(n), idx: map[string]int32{}, anchorAt: math.MinInt64}
}

// fromAnchors makes each meter's anchor the predecessor of the next reading
// read; forget makes the next reading of meter mi have none.
func (g *grid) fromAnchors() {
	copy(g.lastTS, g.aTS)
	copy(g.lastKWh, g.aKWh)
	copy(g.lastIV, g.aIV)
}

func (g *grid) forget(mi int32) { g.lastTS[mi] = math.MinInt64 }

func (g *grid) hourTime(h int) time.Time { return time.Unix(g.t0+int64(h)*hourS, 0).UTC() }

// hourOf returns the index of the hour holding instant t (may be out of range).
func (g *grid) hourOf(t time.Time) int {
	return int(math.Floor(float64(t.Unix()-g.t0) / hourS))
}

func (g *grid) meter(id string) int32 {
	if i, ok := g.idx[id]; ok {
		return i
	}
	i := int32(len(g.ids))
	id = strings.Clone(id)
	g.idx[id] = i
	g.ids = append(g.ids, id)
	if int(i)%chunkMeters == 0 {
		g.chunks = append(g.chunks, gridChunk{})
	}
	c := &g.chunks[len(g.chunks)-1]
	c.e, c.cov = growRow(c.e, g.stride), growRow(c.cov, g.stride)
	c.dsq, c.dn = growRow(c.dsq, g.stride), growRow(c.dn, g.stride)
	g.lastTS = append(g.lastTS, math.MinInt64)
	g.lastKWh = append(g.lastKWh, 0)
	g.lastIV = append(g.lastIV, 0)
	g.seen = append(g.seen, math.MinInt64)
	g.aTS = append(g.aTS, math.MinInt64)
	g.aKWh = append(g.aKWh, 0)
	g.aIV = append(g.aIV, 0)
	return i
}

func (g *grid) add(id string, ts []time.Time, kwh []float64, iv []int32) {
	g.addWindow(g.meter(id), ts, kwh, iv, bookAll)
}

// booking says which parts of a meter's readings a read books into the
// grid: the readings up to after are context only (the predecessor a later
// reading's difference needs); a reading after that books its energy and
// its difference into hours [lo, hi), and one after fresh into any hour.
// A first load books everything; an incremental read books the new
// readings and re-books the hours it re-reads; re-reading one hour books
// only that hour.
type booking struct {
	after, fresh int64 // Unix s
	lo, hi       int   // grid hours
}

var bookAll = booking{after: math.MinInt64, fresh: math.MinInt64, lo: 0, hi: math.MaxInt}

func (b *booking) books(ts int64, h int) bool {
	return ts > b.after && (ts > b.fresh || h >= b.lo && h < b.hi)
}

func (g *grid) addWindow(mi int32, ts []time.Time, kwh []float64, iv []int32, bk booking) {
	e, cov, dsq, dn := g.eRow(mi), g.covRow(mi), g.dsqRow(mi), g.dnRow(mi)
	end := g.t0 + int64(g.n)*hourS
	for k, t := range ts {
		s := int64(iv[k])
		if s <= 0 {
			s = 900
		}
		hi := t.Unix()
		lo := hi - s
		g.seen[mi] = max(g.seen[mi], hi)
		pt, pk, pv := g.lastTS[mi], g.lastKWh[mi], g.lastIV[mi]
		g.lastTS[mi], g.lastKWh[mi], g.lastIV[mi] = hi, kwh[k], iv[k]
		if hi <= g.anchorAt && hi > g.aTS[mi] {
			g.aTS[mi], g.aKWh[mi], g.aIV[mi] = hi, kwh[k], iv[k]
		}
		if hi <= g.t0 || lo >= end || kwh[k] < 0 || math.IsNaN(kwh[k]) || hi <= bk.after {
			continue
		}
		if pv == iv[k] && s < hourS && hi-pt == s && pk >= 0 && hi-1 >= g.t0 && hi-1 < end {
			h := (hi - 1 - g.t0) / hourS
			if bk.books(hi, int(h)) && dn[h] < math.MaxUint8 {
				d := (kwh[k] - pk) * hourS / float64(s)
				dsq[h] += float32(d * d)
				dn[h]++
			}
		}
		for a := lo; a < hi; {
			b := min(hi, (floorDiv(a-g.t0, hourS)+1)*hourS+g.t0)
			if a >= g.t0 && a < end {
				h := (a - g.t0) / hourS
				if bk.books(hi, int(h)) {
					e[h] += float32(kwh[k] * float64(b-a) / float64(s))
					cov[h] = uint16(min(hourS, int64(cov[h])+b-a))
				}
			}
			a = b
		}
	}
}

// zero clears meter mi's hours [lo, hi).
func (g *grid) zero(mi int32, lo, hi int) {
	lo, hi = max(lo, 0), min(hi, g.n)
	if lo >= hi {
		return
	}
	clear(g.eRow(mi)[lo:hi])
	clear(g.covRow(mi)[lo:hi])
	clear(g.dsqRow(mi)[lo:hi])
	clear(g.dnRow(mi)[lo:hi])
}

// slide moves the grid to cover [from, to): hours before from are dropped,
// new hours at the end start empty. from must not be before the grid's
// start; a meter keeps its index.
func (g *grid) slide(from, to time.Time) {
	d := int((from.Unix() - g.t0) / hourS)
	n := int((to.Unix() - from.Unix()) / hourS)
	keep := max(0, min(g.n-d, n)) // hours kept, now at [0, keep)
	stride := g.stride
	switch {
	case n > stride:
		stride = strideFor(n)
	case d > 0 && stride > strideFor(n+2*24):
		// The rows hold over two days more than the grid now covers (it
		// read a backlog when fresh): laid out anew with room for a
		// day's hours to come, they no longer carry the backlog's length
		// in memory, and a meter's hours lie closer together.
		stride = strideFor(n + 24)
	}
	// A day's slide moves every row: chunk by chunk on every core.
	onCores(len(g.chunks), func(ci int) {
		c := &g.chunks[ci]
		c.e = slideRows(c.e, g.stride, stride, d, keep, n)
		c.cov = slideRows(c.cov, g.stride, stride, d, keep, n)
		c.dsq = slideRows(c.dsq, g.stride, stride, d, keep, n)
		c.dn = slideRows(c.dn, g.stride, stride, d, keep, n)
	})
	g.t0, g.n, g.stride = from.Unix(), n, stride
}

// slideRows moves each row of v (rows of old values) d values to the left,
// keeping keep of them, and clears the rest up to n; rows longer than old
// are laid out anew in a new array.
func slideRows[T any](v []T, old, stride, d, keep, n int) []T {
	rows := len(v) / old
	if stride == old {
		for r := range rows {
			row := v[r*old : (r+1)*old]
			if keep > 0 && d > 0 {
				copy(row, row[d:d+keep])
			}
			clear(row[keep:n])
		}
		return v
	}
	out := make([]T, rows*stride)
	for r := range rows {
		copy(out[r*stride:r*stride+keep], v[r*old+d:])
	}
	return out
}

// growRow appends a zero row of stride values to v.
func growRow[T any](v []T, stride int) []T {
	n := len(v)
	v = slices.Grow(v, stride)[:n+stride]
	clear(v[n:])
	return v
}

// resize drops the first d values of v and makes it n long, new values
// zero; it reuses v's array when that holds them.
func resize[T any](v []T, d, n int) []T {
	if d > 0 {
		if d >= len(v) {
			v = v[:0]
		} else {
			copy(v, v[d:])
			v = v[:len(v)-d]
		}
	}
	if n <= len(v) {
		return v[:n]
	}
	if n <= cap(v) {
		old := len(v)
		v = v[:n]
		clear(v[old:])
		return v
	}
	out := make([]T, n, strideFor(n))
	copy(out, v)
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// power returns the mean kW of meter mi over hour h and whether at least
// half the hour is covered.
func (g *grid) power(mi int32, h int) (float64, bool) {
	ch, o := g.row(mi)
	return rowPower(ch.e[o:o+g.n], ch.cov[o:o+g.n], h)
}

// rowPower is power on a meter's rows of energy e and coverage cov.
func rowPower(e []float32, cov []uint16, h int) (float64, bool) {
	c := cov[h]
	if c < hourS/2 {
		return 0, false
	}
	return float64(e[h]) * hourS / float64(c), true
}

// full reports whether hour h of meter mi is covered completely.
func (g *grid) full(mi int32, h int) bool { return g.covRow(mi)[h] >= hourS-1 }

// jitter returns the standard deviation of meter mi's reading-to-reading
// power over hours [a, b] (von Neumann: sqrt(sum d^2 / 2n)) and the number
// of successive differences behind it.
func (g *grid) jitter(mi int32, a, b int) (float64, int) {
	var sq float64
	n := 0
	dsq, dn := g.dsqRow(mi), g.dnRow(mi)
	for h := max(a, 0); h <= b && h < g.n; h++ {
		sq += float64(dsq[h])
		n += int(dn[h])
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return math.Sqrt(sq / float64(2*n)), n
}
