package detect

import (
	"context"
	"math"
	"strings"
	"time"
)

// grid holds every meter's energy per clock hour over [t0, t0+n hours):
// the sum of its readings' energy that falls in the hour (an interval that
// straddles hours is shared in proportion) and how many seconds of the hour
// the readings cover, and how much the readings within it jitter. Hourly
// sums keep 100,000 meters x 8 days in ~200 MB.
type grid struct {
	t0  int64 // Unix seconds, on the hour
	n   int
	idx map[string]int32
	ids []string
	e   [][]float32 // kWh by meter, hour
	cov [][]uint16  // seconds covered by meter, hour
	// Successive differences of the mean kW of back-to-back readings of
	// equal length, booked to the hour the later reading ends in: their
	// sum of squares and count. Half their mean square estimates the
	// variance of the metered power around its slowly moving level (von
	// Neumann's estimator), which a ramp or daily cycle hardly inflates:
	// the flatness of a load measured inside the hour.
	dsq [][]float32
	dn  [][]uint8
}

const hourS = 3600

func newGrid(from, to time.Time) *grid {
	t0 := from.Unix()
	return &grid{t0: t0, n: int((to.Unix() - t0) / hourS), idx: map[string]int32{}}
}

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
	g.e = append(g.e, make([]float32, g.n))
	g.cov = append(g.cov, make([]uint16, g.n))
	g.dsq = append(g.dsq, make([]float32, g.n))
	g.dn = append(g.dn, make([]uint8, g.n))
	return i
}

func (g *grid) add(id string, ts []time.Time, kwh []float64, iv []int32) {
	mi := g.meter(id)
	e, cov := g.e[mi], g.cov[mi]
	end := g.t0 + int64(g.n)*hourS
	for k, t := range ts {
		s := int64(iv[k])
		if s <= 0 {
			s = 900
		}
		hi := t.Unix()
		lo := hi - s
		if hi <= g.t0 || lo >= end || kwh[k] < 0 || math.IsNaN(kwh[k]) {
			continue
		}
		if k > 0 && iv[k-1] == iv[k] && s < hourS && hi-ts[k-1].Unix() == s && kwh[k-1] >= 0 && hi-1 >= g.t0 && hi-1 < end {
			h := (hi - 1 - g.t0) / hourS
			if g.dn[mi][h] < math.MaxUint8 {
				d := (kwh[k] - kwh[k-1]) * hourS / float64(s)
				g.dsq[mi][h] += float32(d * d)
				g.dn[mi][h]++
			}
		}
		for a := lo; a < hi; {
			b := min(hi, (floorDiv(a-g.t0, hourS)+1)*hourS+g.t0)
			if a >= g.t0 && a < end {
				h := (a - g.t0) / hourS
				e[h] += float32(kwh[k] * float64(b-a) / float64(s))
				cov[h] = uint16(min(hourS, int64(cov[h])+b-a))
			}
			a = b
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func loadGrid(ctx context.Context, src Series, from, to time.Time) (*grid, error) {
	g := newGrid(from, to)
	err := src.MeterReadings(ctx, from, to, func(id string, ts []time.Time, kwh []float64, iv []int32) error {
		g.add(id, ts, kwh, iv)
		return nil
	})
	return g, err
}

// power returns the mean kW of meter mi over hour h and whether at least
// half the hour is covered.
func (g *grid) power(mi int32, h int) (float64, bool) {
	c := g.cov[mi][h]
	if c < hourS/2 {
		return 0, false
	}
	return float64(g.e[mi][h]) * hourS / float64(c), true
}

// full reports whether hour h of meter mi is covered completely.
func (g *grid) full(mi int32, h int) bool { return g.cov[mi][h] >= hourS-1 }

// jitter returns the standard deviation of meter mi's reading-to-reading
// power over hours [a, b] (von Neumann: sqrt(sum d^2 / 2n)) and the number
// of successive differences behind it.
func (g *grid) jitter(mi int32, a, b int) (float64, int) {
	var sq float64
	n := 0
	for h := max(a, 0); h <= b && h < g.n; h++ {
		sq += float64(g.dsq[mi][h])
		n += int(g.dn[mi][h])
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return math.Sqrt(sq / float64(2*n)), n
}
