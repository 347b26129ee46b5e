package detect

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/gonum/floats"

	"github.com/rigwatch/rigwatch/schemas"
)

const (
	// maxSuspects is how many meters suspect_meters names at most.
	maxSuspects = 10
	// suspectBlock is the span, in hours, of one observation: long enough
	// for a household's minute-to-minute swings to average out, short
	// enough to see a theft that takes only the evening peak or a window of
	// the day.
	suspectBlock = 3
	// minSuspectZ is the smallest z statistic of a meter named.
	minSuspectZ = 1.0
)

// sblock is one block of suspectBlock hours of a feeder's balance.
type sblock struct {
	res  float64   // unexplained energy: head less meters less normal losses
	x    []float64 // each member meter's energy
	met  float64   // their sum
	day  int       // local day start hour
	slot int       // weekday or weekend, and block of the day
	ep   bool      // within the episode
}

// suspects ranks the meters of a feeder with an imbalance by how likely
// each hides the missing energy. A meter that under-reports reads less than
// its customer's usual use exactly on the days the feeder's head sees energy
// its meters do not. Over the lookback up to the episode's last hour, the
// feeder's days split at the median share of unexplained energy: days on
// which it balanced (nobody stealing, or less), and days on which it did
// not. In each block of suspectBlock hours of a weekday or a weekend day,
// an honest meter reads the same on both kinds of day, but a thief reads
// less on the days the feeder did not balance. A meter's statistic is
//
//	z = sum_slots n_t (mean_balanced - mean_unbalanced) / its standard error
//
// (Welch's two-sample test, summed over slots weighted by the unbalanced
// blocks). Meters are named by z, at most maxSuspects with z >= minSuspectZ;
// est_kwh is what the meter read below its balanced-day mean over the
// episode's unbalanced blocks. Consumption alone cannot tell a thief who
// takes little from a customer who used less that day: the list is a
// ranking of doors to knock on, not a verdict. A tap ahead of the meters
// leaves no meter reading less and the list short or empty.
func (r *run) suspects(ep *episode, f *feederSeries) {
	g := r.g
	lm := &ep.loss
	hl := int((ep.last-g.t0)/hourS) - 1
	if hl < 0 || hl >= g.n {
		return
	}
	ep.suspects = []schemas.SuspectMeter{}
	ms, _ := r.members(f.id, g.hourTime(hl).Add(30*time.Minute))
	// The blocks of the days before hl's are the same from one hour to the
	// next while the model, the members and their readings are: kept with
	// the episode (not in its snapshot) and cut again only then.
	today := r.dayOf(hl)
	key := suspectKey{t0: g.t0, loss: *lm, members: memberKey(g, ms), today: g.t0 + int64(today)*hourS}
	start := int((ep.start - g.t0) / hourS)
	if ep.sbKey != key || r.fedFrom < today {
		ep.sb, ep.sbKey = r.suspectBlocks(f, lm, ms, start, today-r.lookH, today-24, hl), key
		ep.sm = suspectMoments{}
	}
	past := len(ep.sb)
	blocks := append(slices.Clip(ep.sb), r.suspectBlocks(f, lm, ms, start, today, today, hl)...)
	perDay := 24 / suspectBlock
	if len(blocks) < 2*perDay || len(ms) == 0 {
		return
	}
	// Each day's unexplained share, and the median that splits them.
	dayRes, dayMet := map[int]float64{}, map[int]float64{}
	for _, bl := range blocks {
		dayRes[bl.day] += bl.res
		dayMet[bl.day] += bl.met
	}
	var shares []float64
	for d, m := range dayMet {
		if m > 0 {
			shares = append(shares, dayRes[d]/m)
		}
	}
	// Unbalanced: above the median and above half the daily theft share
	// that counts, so that when thieves stole on only a few days of the
	// lookback, honest days stay on the balanced side.
	cut := math.Max(medianOf(shares), 0.5*r.cfg.DailyImbalanceFraction+lm.allow)
	unbalanced := make([]bool, len(blocks))
	for i, bl := range blocks {
		m := dayMet[bl.day]
		unbalanced[i] = m > 0 && dayRes[bl.day]/m > cut
	}
	nslot := 2 * perDay
	// Each member's moments by slot over the days before today's, summed
	// block by block as below: kept with the episode while those blocks
	// and their split stay, so that an hour adds only today's blocks.
	sm := &ep.sm
	if sm.bal == nil || !slices.Equal(sm.split, unbalanced[:past]) {
		sm.split = slices.Clone(unbalanced[:past])
		sm.bal, sm.unb = make([]moments, len(ms)*nslot), make([]moments, len(ms)*nslot)
		for i := range ms {
			bal, unb := sm.bal[i*nslot:(i+1)*nslot], sm.unb[i*nslot:(i+1)*nslot]
			for b, bl := range blocks[:past] {
				m := &bal[bl.slot]
				if unbalanced[b] {
					m = &unb[bl.slot]
				}
				m.add(bl.x[i])
			}
		}
	}
	// the blocks est sums over: the episode's unbalanced ones
	var epUnb []int
	for b, bl := range blocks {
		if bl.ep && unbalanced[b] {
			epUnb = append(epUnb, b)
		}
	}
	type cand struct {
		i     int
		z     float64
		usual []float64
	}
	var cands []cand
	bal, unb := make([]moments, nslot), make([]moments, nslot)
	usual := make([]float64, nslot)
	for i := range ms {
		copy(bal, sm.bal[i*nslot:(i+1)*nslot])
		copy(unb, sm.unb[i*nslot:(i+1)*nslot])
		for b := past; b < len(blocks); b++ {
			bl := &blocks[b]
			m := &bal[bl.slot]
			if unbalanced[b] {
				m = &unb[bl.slot]
			}
			m.add(bl.x[i])
		}
		var diff, variance float64
		clear(usual)
		for j := range nslot {
			b, u := bal[j], unb[j]
			if b.n < 2 || u.n < 2 {
				continue
			}
			mb, mu := b.sum/b.n, u.sum/u.n
			vb := math.Max(0, b.sq-b.n*mb*mb) / (b.n - 1)
			vu := math.Max(0, u.sq-u.n*mu*mu) / (u.n - 1)
			diff += u.n * (mb - mu)
			variance += u.n * u.n * (vb/b.n + vu/u.n)
			usual[j] = mb
		}
		if variance <= 0 {
			continue
		}
		z := diff / math.Sqrt(variance)
		if z < minSuspectZ {
			continue
		}
		cands = append(cands, cand{i: i, z: z, usual: slices.Clone(usual)})
	}
	// The meters named, by score then id; est_kwh only for them.
	slices.SortFunc(cands, func(a, b cand) int {
		if c := cmp.Compare(round(b.z, 2), round(a.z, 2)); c != 0 {
			return c
		}
		return cmp.Compare(g.ids[ms[a.i]], g.ids[ms[b.i]])
	})
	if len(cands) > maxSuspects {
		cands = cands[:maxSuspects]
	}
	var out []schemas.SuspectMeter // nil, not empty, when none
	for _, c := range cands {
		var est float64
		for _, b := range epUnb {
			if bl := &blocks[b]; c.usual[bl.slot] > 0 {
				est += c.usual[bl.slot] - bl.x[c.i]
			}
		}
		out = append(out, schemas.SuspectMeter{MeterID: g.ids[ms[c.i]], Score: round(c.z, 2),
			EstKWh: round(math.Max(0, est)*ep.held.scale(), 1)})
	}
	ep.suspects = out
}

// moments are the count, sum and sum of squares of a member's blocks.
type moments struct{ n, sum, sq float64 }

func (m *moments) add(x float64) {
	m.n++
	m.sum += x
	m.sq += x * x
}

// suspectMoments are an episode's members' moments by slot over its blocks
// of the days before the last one (sblock), as split into balanced and
// unbalanced days: member i's slots at [i*nslot, (i+1)*nslot).
type suspectMoments struct {
	split    []bool // each block unbalanced
	bal, unb []moments
}

// suspectKey names what an episode's cached blocks were cut with.
type suspectKey struct {
	t0      int64
	loss    lossModel
	members string
	today   int64
}

// memberKey names a set of grid meters.
func memberKey(g *grid, ms []int32) string {
	var b strings.Builder
	for _, mi := range ms {
		b.WriteString(g.ids[mi])
		b.WriteByte(0)
	}
	return b.String()
}

// suspectBlocks cuts the local days from first to last (grid hours that
// start them) into blocks of suspectBlock hours up to hour hl with at least
// two thirds of their hours judgeable, scaled up to whole blocks. Blocks
// that end after hour start lie in the episode. The days of the lookback
// before the day of hl, and that day, make an episode's blocks.
func (r *run) suspectBlocks(f *feederSeries, lm *lossModel, ms []int32, start, first, last, hl int) []sblock {
	g := r.g
	for first < 0 {
		first += 24
	}
	perDay := 24 / suspectBlock
	var blocks []sblock
	for d := first; d <= last; d += 24 {
		for b := range perDay {
			from := d + b*suspectBlock
			bl := sblock{x: make([]float64, len(ms)), day: d, slot: b, ep: from+suspectBlock > start}
			n := 0
			for k := from; k < from+suspectBlock && k <= hl; k++ {
				if !f.judgeable(lm, k) {
					continue
				}
				n++
				bl.res += f.res(lm, k)
				for i, mi := range ms {
					bl.x[i] += float64(g.eRow(mi)[k])
				}
			}
			if 3*n < 2*suspectBlock {
				continue
			}
			sc := float64(suspectBlock) / float64(n)
			bl.res *= sc
			floats.Scale(sc, bl.x)
			bl.met = floats.Sum(bl.x)
			if r.slot(from) >= 24 {
				bl.slot += perDay
			}
			blocks = append(blocks, bl)
		}
	}
	return blocks
}

// slot is hour k's place in a weekly profile: weekday or weekend, and local
// hour of day.
func (r *run) slot(k int) int {
	d := floorDiv(r.g.t0+int64(k)*hourS+r.off, 86400)
	wd := (d + 3) % 7 // 1970-01-01 was a Thursday; Monday = 0
	if wd >= 5 {
		return 24 + r.hod(k)
	}
	return r.hod(k)
}
