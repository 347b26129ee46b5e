package detect

import (
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/rigwatch/rigwatch/schemas"
)

// lossModel is a feeder's normal technical losses as a function of its
// metered load: loss = c + a*M + b*M^2 kWh in an hour of M kWh. c is the
// transformers' no-load loss, there whatever the load; a*M and b*M^2 are
// the conductors' and the transformers' load losses.
type lossModel struct {
	c, a, b float64
	sigma   float64 // robust spread of an honest hour's residual, kWh
	n       int     // complete hours the model was fitted on
	share   float64 // normal losses / metered energy over the fit window
	typM    float64 // median metered kWh an hour over the fit window
	loM     float64 // 10th and 90th percentile: the load range the model saw
	hiM     float64
	// source says where the model comes from: "own_fit" (the feeder's own
	// history), "peers" (its own fit was above its class's band or far above
	// its peers: their median loss share instead) or "band" (the same
	// without peers: the band's typical share).
	source   string
	fitShare float64 // the share its own fit gave
	// allow is the share of the metered load by which a feeder judged
	// against its peers or band may exceed that normal before it counts:
	// the most a feeder of its class may lose. Its excess is measured from
	// the normal all the same.
	allow float64
	ok    bool // enough history to judge the feeder
}

func (l *lossModel) loss(m float64) float64 { return l.c + l.a*m + l.b*m*m }

// inRange reports whether a metered load lies within the range the model
// saw, with room: beyond it the model extrapolates, as after a large site
// was closed or a new one connected, and the feeder is not judged until the
// model has seen the new load.
func (l *lossModel) inRange(m float64) bool { return m >= 0.5*l.loM && m <= 2*l.hiM }

// impossible reports whether an hour's balance is physically impossible for
// a feeder: its head meter measured less than its meters (beyond metering
// error). Such hours come from switching or a meter fault; they say nothing
// of losses.
func impossible(head, metered float64) bool { return head-metered < -(0.005*metered + 0.05) }

// fitLoss fits a feeder's loss model on complete hours (xs metered, ys head
// less metered, kWh). Theft only ever adds to the residual, so the model is
// the lower envelope of the data: a quantile fit (25%) to start, then least
// squares on the hours within 2.5 robust standard deviations above the fit,
// the deviation estimated from the hours below it, where theft cannot be,
// until the hours kept settle. Diversion on some of the hours is left out;
// diversion on all of them is not, which is what the band and the peers are
// for (see Config.LossBands).
func fitLoss(xs, ys []float64, minHours int) lossModel {
	lm := lossModel{n: len(xs)}
	if len(xs) < minHours {
		return lm
	}
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	lm.typM = quantileSorted(sorted, 0.5)
	lm.loM, lm.hiM = quantileSorted(sorted, 0.1), quantileSorted(sorted, 0.9)
	scale := lm.typM
	if scale <= 0 {
		return lm
	}
	us := make([]float64, len(xs))
	for i, x := range xs {
		us[i] = x / scale
	}
	// A load that hardly varies cannot tell the fixed loss from the
	// proportional one: fit a*M + b*M^2 alone then.
	cols := 3
	if lm.hiM-lm.loM < 0.2*lm.typM {
		cols = 2
	}
	beta, sigma := lowerEnvelope(us, ys, cols)
	// Losses never fall as the load grows and are never negative: a
	// coefficient below zero is noise fitted; drop its term and refit.
	if beta[0] < 0 || beta[1] < 0 || beta[2] < 0 {
		var best [3]float64
		bestSS := math.Inf(1)
		for _, terms := range [][3]bool{{false, true, true}, {true, true, false}, {false, true, false}} {
			b, s := lowerEnvelopeTerms(us, ys, terms)
			if b[0] < 0 || b[1] < 0 || b[2] < 0 {
				continue
			}
			if ss := inlierSS(us, ys, b, s); ss < bestSS {
				best, bestSS, sigma = b, ss, s
			}
		}
		beta = best
	}
	for j := range beta {
		beta[j] = math.Max(0, beta[j]) // no sub-model held: the terms that are physical
	}
	res := make([]float64, len(us))
	residuals(us, ys, beta, res)
	if s := lowerSigma(res, nil); !math.IsNaN(s) {
		sigma = s
	}
	if math.IsNaN(sigma) {
		// Too few hours below the fit to say: the spread of all of them.
		med := medianOf(res)
		dev := make([]float64, len(res))
		for i, r := range res {
			dev[i] = math.Abs(r - med)
		}
		sigma = 1.4826 * medianOf(dev)
	}
	lm.c = beta[0]
	lm.a = beta[1] / scale
	lm.b = beta[2] / (scale * scale)
	lm.sigma = sigma
	var loss, metered float64
	for _, x := range xs {
		loss += lm.loss(x)
		metered += x
	}
	lm.share = loss / metered
	lm.fitShare = lm.share
	lm.source = "own_fit"
	lm.ok = true
	return lm
}

// lowerEnvelope fits the first (3 - cols)..2 terms; see lowerEnvelopeTerms.
func lowerEnvelope(us, ys []float64, cols int) ([3]float64, float64) {
	return lowerEnvelopeTerms(us, ys, [3]bool{cols == 3, true, true})
}

// inlierSS is the sum of squared residuals within the trimming band.
func inlierSS(us, ys []float64, beta [3]float64, sigma float64) float64 {
	var ss float64
	for i, u := range us {
		r := ys[i] - (beta[0] + beta[1]*u + beta[2]*u*u)
		if r <= 2.5*sigma && r >= -3.5*sigma {
			ss += r * r
		} else {
			ss += 6.25 * sigma * sigma
		}
	}
	return ss
}

// lowerEnvelopeTerms is the robust fit of fitLoss on the terms named (the
// constant, the linear, the quadratic): a quantile fit (25%) to start, then
// least squares on the hours within 2.5 robust standard deviations above
// the fit and 3.5 below, the deviation estimated from the hours below it,
// where theft cannot be, until the hours kept settle. It returns the
// coefficients and the deviation.
func lowerEnvelopeTerms(us, ys []float64, terms [3]bool) ([3]float64, float64) {
	beta := quantileFit(us, ys, terms, 0.25)
	res := make([]float64, len(us))
	w := make([]float64, len(us))
	neg := make([]float64, 0, len(us))
	sigma := 0.0
	nt := 0
	for _, t := range terms {
		if t {
			nt++
		}
	}
	for iter := 0; iter < 12; iter++ {
		residuals(us, ys, beta, res)
		sigma = lowerSigma(res, neg)
		if math.IsNaN(sigma) {
			break
		}
		changed := false
		kept := 0
		for i, r := range res {
			k := 0.0
			if r <= 2.5*sigma+1e-9 && r >= -3.5*sigma-1e-9 {
				k = 1
				kept++
			}
			changed = changed || k != w[i]
			w[i] = k
		}
		if !changed && iter > 0 || kept < nt+2 {
			break
		}
		b, ok := weightedLS(us, ys, w, terms)
		if !ok {
			break
		}
		beta = b
	}
	return beta, sigma
}

// lowerSigma estimates the standard deviation of honest residuals from
// those below the fit, where theft cannot be: 1.4826 times their median
// distance from it. NaN with fewer than 4 of them. neg, if not nil, is
// room for them (a fit's passes reuse it).
func lowerSigma(res, neg []float64) float64 {
	neg = neg[:0]
	for _, r := range res {
		if r <= 0 {
			neg = append(neg, -r)
		}
	}
	if len(neg) < 4 {
		return math.NaN()
	}
	return 1.4826 * medianSelecting(neg)
}

// basis is the row (1, u, u^2) of the loss model's design.
func basis(u float64) [3]float64 { return [3]float64{1, u, u * u} }

// residuals sets res to y - beta.basis(u).
func residuals(us, ys []float64, beta [3]float64, res []float64) {
	for i, u := range us {
		res[i] = ys[i] - (beta[0] + beta[1]*u + beta[2]*u*u)
	}
}

// weightedLS solves weighted least squares for the model's coefficients on
// the terms named (the constant, the linear, the quadratic), from the
// normal equations: at most 3 by 3, accumulated without building the
// design matrix. Terms not named stay 0.
//
// The fits call it some fifty times each, a few thousand fits a day: it
// solves the equations itself, with the arithmetic of gonum's LU solve
// (partial pivoting, as mat.VecDense.SolveVec does for a square matrix)
// operation for operation, so the coefficients are those gonum gives to
// the last bit; a system that is singular, ill-conditioned or not finite
// goes to gonum itself, which reports it.
func weightedLS(us, ys, w []float64, terms [3]bool) ([3]float64, bool) {
	var idx [3]int
	n := 0
	for j, t := range terms {
		if t {
			idx[n] = j
			n++
		}
	}
	var beta [3]float64
	if n == 0 {
		return beta, false
	}
	// A (upper triangle) and b, summed as gonum's were.
	ne := newNormalEqs(idx, n)
	ne.sum(us, ys, w)
	return ne.solve()
}

// normalEqs sums the normal equations of weighted least squares on the
// terms idx[:n] of the basis (1, u, u^2), point by point: b[p] +=
// w*x[p]*y and A[p][q] += w*x[p]*x[q], products taken left to right, as
// weightedLS always summed them.
type normalEqs struct {
	idx [3]int
	n   int
	// A's upper triangle and b; for n < 3 the unused ones sum junk
	a00, a01, a02, a11, a12, a22 float64
	b0, b1, b2                   float64
}

func newNormalEqs(idx [3]int, n int) normalEqs {
	for p := n; p < 3; p++ {
		idx[p] = 0
	}
	return normalEqs{idx: idx, n: n}
}

func (e *normalEqs) add(w, u, y float64) {
	x := basis(u)
	x0, x1, x2 := x[e.idx[0]], x[e.idx[1]], x[e.idx[2]]
	w0, w1, w2 := w*x0, w*x1, w*x2
	e.b0 += w0 * y
	e.b1 += w1 * y
	e.b2 += w2 * y
	e.a00 += w0 * x0
	e.a01 += w0 * x1
	e.a02 += w0 * x2
	e.a11 += w1 * x1
	e.a12 += w1 * x2
	e.a22 += w2 * x2
}

// sum adds the points with their weights w (those of weight 0 left out),
// as add does, the sums kept in registers meanwhile.
func (e *normalEqs) sum(us, ys, w []float64) {
	if e.n == 3 && e.idx == [3]int{0, 1, 2} {
		e.sumFull(us, ys, w)
		return
	}
	i0, i1, i2 := e.idx[0], e.idx[1], e.idx[2]
	a00, a01, a02, a11, a12, a22 := e.a00, e.a01, e.a02, e.a11, e.a12, e.a22
	b0, b1, b2 := e.b0, e.b1, e.b2
	w = w[:len(us)]
	ys = ys[:len(us)]
	for i, u := range us {
		wi := w[i]
		if wi == 0 {
			continue
		}
		x := basis(u)
		x0, x1, x2 := x[i0], x[i1], x[i2]
		w0, w1, w2 := wi*x0, wi*x1, wi*x2
		y := ys[i]
		b0 += w0 * y
		b1 += w1 * y
		b2 += w2 * y
		a00 += w0 * x0
		a01 += w0 * x1
		a02 += w0 * x2
		a11 += w1 * x1
		a12 += w1 * x2
		a22 += w2 * x2
	}
	e.a00, e.a01, e.a02, e.a11, e.a12, e.a22 = a00, a01, a02, a11, a12, a22
	e.b0, e.b1, e.b2 = b0, b1, b2
}

// sumFull is sum for all three terms (the basis 1, u, u²): the same
// products, without the ones by 1 and the basis's indexing; the sums are
// the same to the bit.
func (e *normalEqs) sumFull(us, ys, w []float64) {
	a00, a01, a02, a11, a12, a22 := e.a00, e.a01, e.a02, e.a11, e.a12, e.a22
	b0, b1, b2 := e.b0, e.b1, e.b2
	w = w[:len(us)]
	ys = ys[:len(us)]
	for i, u := range us {
		wi := w[i]
		if wi == 0 {
			continue
		}
		y := ys[i]
		uu := u * u
		w1, w2 := wi*u, wi*uu
		b0 += wi * y
		b1 += w1 * y
		b2 += w2 * y
		a00 += wi
		a01 += w1
		a02 += w2
		a11 += w1 * u
		a12 += w1 * uu
		a22 += w2 * uu
	}
	e.a00, e.a01, e.a02, e.a11, e.a12, e.a22 = a00, a01, a02, a11, a12, a22
	e.b0, e.b1, e.b2 = b0, b1, b2
}

// sumQuantile adds every point weighted for the quantile fit at tau around
// beta (quantileFit), as add does: the weights first, into w (one per
// point), then the sums. Apart, each loop keeps its values in registers;
// together they did not, and took twice as long.
func (e *normalEqs) sumQuantile(us, ys []float64, beta [3]float64, tau, eps float64, w []float64) {
	w = w[:len(us)]
	ys = ys[:len(us)]
	c0, c1, c2 := beta[0], beta[1], beta[2]
	for i, u := range us {
		w[i] = quantileWeight(ys[i], c0+c1*u+c2*u*u, tau, eps)
	}
	e.sum(us, ys, w)
}

// quantileWeight is the quantile fit's weight at tau of a point y whose
// fitted value is fit: q / max(|r|, eps) for the residual r, q = tau above
// the fit and 1 - tau below it (eps > 0; NaN stays NaN).
func quantileWeight(y, fit, tau, eps float64) float64 {
	r := y - fit
	q := tau
	if r < 0 {
		q = 1 - tau
	}
	d := math.Abs(r)
	if d <= eps {
		d = eps
	}
	return q / d
}

// solve solves the equations summed for the coefficients of the terms.
func (e *normalEqs) solve() ([3]float64, bool) {
	var beta [3]float64
	n, idx := e.n, e.idx
	a := [3][3]float64{{e.a00, e.a01, e.a02}, {e.a01, e.a11, e.a12}, {e.a02, e.a12, e.a22}}
	b := [3]float64{e.b0, e.b1, e.b2}
	for p := n; p < 3; p++ {
		b[p] = 0
		for q := range 3 {
			a[p][q], a[q][p] = 0, 0
		}
	}
	sol, ok := solveLU(a, b, n)
	if !ok {
		return weightedLSGonum(a, b, n, idx)
	}
	for p := 0; p < n; p++ {
		beta[idx[p]] = sol[p]
	}
	return beta, true
}

// solveLU solves the n by n system (n <= 3) a x = b as gonum's LU does
// (lapack Dgetf2 and Dgetrs on the row-major matrix): the pivot the
// largest in its column (the first of equals), the column below it scaled
// by its reciprocal, the rows below updated by the rank-one product, then
// forward and back substitution, the latter multiplying by the diagonal's
// reciprocals. It gives up (false) where gonum would report a condition
// error or might: a value not finite or huge, a pivot zero or subnormal,
// a 1-norm condition number over 1e12 (gonum's own estimate, a lower
// bound of it, must stay under 1e16).
func solveLU(a [3][3]float64, b [3]float64, n int) ([3]float64, bool) {
	const huge = 1e150
	var anorm float64
	for q := 0; q < n; q++ {
		var col float64
		for p := 0; p < n; p++ {
			v := math.Abs(a[p][q])
			if !(v <= huge) {
				return b, false
			}
			col += v
		}
		anorm = math.Max(anorm, col)
		if !(math.Abs(b[q]) <= huge) {
			return b, false
		}
	}
	lu := a
	var piv [3]int
	for j := 0; j < n; j++ {
		jp, best := j, math.Abs(lu[j][j])
		for i := j + 1; i < n; i++ {
			if v := math.Abs(lu[i][j]); v > best {
				jp, best = i, v
			}
		}
		piv[j] = jp
		if !(best >= 0x1p-1022) { // zero, subnormal
			return b, false
		}
		if jp != j {
			lu[j], lu[jp] = lu[jp], lu[j]
		}
		r := 1 / lu[j][j]
		for i := j + 1; i < n; i++ {
			lu[i][j] *= r
		}
		for i := j + 1; i < n; i++ {
			t := -lu[i][j]
			for k := j + 1; k < n; k++ {
				lu[i][k] += t * lu[j][k]
			}
		}
	}
	subst := func(x [3]float64) [3]float64 {
		for i := 0; i < n; i++ {
			if p := piv[i]; p != i {
				x[i], x[p] = x[p], x[i]
			}
		}
		for i := 0; i < n; i++ {
			for k := 0; k < i; k++ {
				if v := lu[i][k]; v != 0 {
					x[i] += -v * x[k]
				}
			}
		}
		for i := n - 1; i >= 0; i-- {
			for k := i + 1; k < n; k++ {
				if v := lu[i][k]; v != 0 {
					x[i] += -v * x[k]
				}
			}
			x[i] *= 1 / lu[i][i]
		}
		return x
	}
	// The inverse's 1-norm, column by column.
	var inorm float64
	for q := 0; q < n; q++ {
		var e [3]float64
		e[q] = 1
		col := subst(e)
		var s float64
		for p := 0; p < n; p++ {
			s += math.Abs(col[p])
		}
		inorm = math.Max(inorm, s)
	}
	if !(anorm*inorm <= 1e12) {
		return b, false
	}
	return subst(b), true
}

// weightedLSGonum solves the normal equations a (symmetric, n by n) x = b
// with gonum, the terms of x named by idx.
func weightedLSGonum(a [3][3]float64, b [3]float64, n int, idx [3]int) ([3]float64, bool) {
	var beta [3]float64
	A := mat.NewSymDense(n, nil)
	bv := mat.NewVecDense(n, nil)
	for p := 0; p < n; p++ {
		bv.SetVec(p, b[p])
		for q := p; q < n; q++ {
			A.SetSym(p, q, a[p][q])
		}
	}
	var sol mat.VecDense
	if err := sol.SolveVec(A, bv); err != nil {
		return beta, false
	}
	for p := 0; p < n; p++ {
		beta[idx[p]] = sol.AtVec(p)
	}
	return beta, true
}

// quantileFit is quantile regression at tau by iteratively reweighted least
// squares: the lower envelope of a cloud whose upper side theft inflates.
func quantileFit(us, ys []float64, terms [3]bool, tau float64) [3]float64 {
	n := len(us)
	var idx [3]int
	nt := 0
	for j, t := range terms {
		if t {
			idx[nt] = j
			nt++
		}
	}
	if nt == 0 {
		return [3]float64{}
	}
	ne := newNormalEqs(idx, nt)
	for i, u := range us {
		ne.add(1, u, ys[i])
	}
	beta, ok := ne.solve()
	if !ok {
		return [3]float64{}
	}
	var scale float64
	for _, y := range ys {
		scale += math.Abs(y)
	}
	eps := 1e-6*scale/float64(n) + 1e-9
	w := make([]float64, n)
	for iter := 0; iter < 40; iter++ {
		// each hour's weight from its residual, summed into the equations
		// at once
		ne = newNormalEqs(idx, nt)
		ne.sumQuantile(us, ys, beta, tau, eps, w)
		nb, ok := ne.solve()
		if !ok {
			break
		}
		d := math.Abs(nb[0]-beta[0]) + math.Abs(nb[1]-beta[1]) + math.Abs(nb[2]-beta[2])
		beta = nb
		if d < 1e-9*(1+math.Abs(beta[1])) {
			break
		}
	}
	return beta
}

// quantileSorted returns the q-quantile of sorted values (linear
// interpolation).
func quantileSorted(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	p := q * float64(len(v)-1)
	i := int(p)
	if i+1 >= len(v) {
		return v[len(v)-1]
	}
	return v[i] + (p-float64(i))*(v[i+1]-v[i])
}

// plausible reports whether a fitted model is physically possible for a
// feeder of the band: losses never negative over the load it saw, and a
// share within the band.
func (l *lossModel) plausible(b LossBand) bool {
	if !l.ok {
		return false
	}
	tol := 0.003
	return l.share >= b.Min-tol && l.share <= b.Max && l.loss(l.loM) >= -tol*l.loM-0.05 && l.loss(l.hiM) >= -tol*l.hiM-0.05
}

// judged returns the model a feeder is judged against: its own fit when
// plausible for its band and not far above its peers (the sorted plausible
// shares of its class, and their robust spread), else its peers' median
// share, or the band's typical share, of the metered load.
func (l lossModel) judged(b LossBand, peers []float64, peerSpread float64) lossModel {
	if !l.ok {
		return l
	}
	limit := b.Max
	if len(peers) >= 5 {
		// Far above its peers: beyond their upper quartile by three
		// robust deviations of theirs, and by two points at least.
		q3 := quantileSorted(peers, 0.75)
		limit = math.Min(limit, q3+math.Max(3*peerSpread, 0.02))
	}
	if l.plausible(b) && l.share <= limit {
		return l
	}
	target, src := b.Typical, "band"
	if len(peers) >= 3 {
		target, src = math.Min(math.Max(quantileSorted(peers, 0.5), b.Min), b.Max), "peers"
	}
	out := l
	out.c, out.a, out.b = 0, target, 0
	out.share, out.source = target, src
	out.allow = math.Max(0, limit-target)
	return out
}

func (l *lossModel) export(feeder string, day time.Time) schemas.LossModel {
	return schemas.LossModel{FeederID: feeder, Day: day, C: l.c, A: l.a, B: l.b, Share: l.share, FitShare: l.fitShare,
		Allow: l.allow, Source: l.source, Sigma: l.sigma, Hours: l.n, TypicalKWh: l.typM}
}

// FitLossModel fits a feeder's loss model, as the detector does, on hours of
// its own balance (metered kWh and head less metered kWh) and judges it
// against its class's band alone (without peers): for a page that has no
// model stored by the detector. ok is false with too few hours.
func FitLossModel(metered, unaccounted []float64, band LossBand, minHours int) (schemas.LossModel, bool) {
	var xs, ys []float64
	for i, m := range metered {
		if m > 0 && !impossible(m+unaccounted[i], m) {
			xs = append(xs, m)
			ys = append(ys, unaccounted[i])
		}
	}
	lm := fitLoss(xs, ys, max(1, minHours))
	if !lm.ok {
		return schemas.LossModel{}, false
	}
	j := lm.judged(band, nil, 0)
	return j.export("", time.Time{}), true
}
