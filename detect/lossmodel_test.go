package detect

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestWeightedLSAsGonum: weightedLS's own solve gives gonum's coefficients
// to the last bit, and fails where gonum reports a condition error: on
// fits' data (loads round their median, kWh of losses, the weights of the
// quantile fit and the trimming), on loads that hardly vary, on a single
// distinct load, on no data.
func TestWeightedLSAsGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	allTerms := [][3]bool{{true, true, true}, {false, true, true}, {true, true, false}, {false, true, false}, {true, false, false}}
	fast, slow, gonumOnly := 0, 0, 0
	for trial := range 20000 {
		n := 1 + rng.IntN(700)
		us, ys, w := make([]float64, n), make([]float64, n), make([]float64, n)
		spread := []float64{0.5, 0.05, 1e-4, 1e-9, 0}[trial%5]
		for i := range us {
			us[i] = 1 + spread*rng.NormFloat64()
			ys[i] = 0.5 + 0.03*us[i] + 0.01*us[i]*us[i] + 0.2*rng.NormFloat64()
			switch trial % 3 {
			case 0:
				w[i] = 1
			case 1:
				w[i] = float64(rng.IntN(2)) // trimmed
			default:
				w[i] = 0.25 / math.Max(math.Abs(rng.NormFloat64()), 1e-7*rng.Float64())
			}
		}
		terms := allTerms[(trial/5)%len(allTerms)]
		got, ok := weightedLS(us, ys, w, terms)
		want, wok, own := weightedLSReference(us, ys, w, terms)
		if ok != wok || got != want {
			t.Fatalf("trial %d (n %d, spread %g, terms %v): got %v %v, gonum %v %v", trial, n, spread, terms, got, ok, want, wok)
		}
		if own {
			fast++
		} else {
			slow++
			if wok {
				gonumOnly++
			}
		}
	}
	t.Logf("solved by solveLU %d, by gonum %d (of which gonum found no condition error %d)", fast, slow, gonumOnly)
	if fast < 1000 || slow < 100 {
		t.Error("both ways not exercised")
	}
	if _, ok := weightedLS(nil, nil, nil, allTerms[0]); ok {
		t.Error("no data solved")
	}
}

// weightedLSReference is weightedLS as it was, on gonum alone; it also
// says whether solveLU solved the system itself.
func weightedLSReference(us, ys, w []float64, terms [3]bool) ([3]float64, bool, bool) {
	var idx []int
	for j, t := range terms {
		if t {
			idx = append(idx, j)
		}
	}
	n := len(idx)
	var beta [3]float64
	if n == 0 {
		return beta, false, false
	}
	A := mat.NewSymDense(n, nil)
	b := mat.NewVecDense(n, nil)
	for i, u := range us {
		if w[i] == 0 {
			continue
		}
		x := basis(u)
		for p, j := range idx {
			b.SetVec(p, b.AtVec(p)+w[i]*x[j]*ys[i])
			for q := p; q < n; q++ {
				A.SetSym(p, q, A.At(p, q)+w[i]*x[j]*x[idx[q]])
			}
		}
	}
	var a3 [3][3]float64
	var b3 [3]float64
	for p := range n {
		b3[p] = b.AtVec(p)
		for q := range n {
			a3[p][q] = A.At(p, q)
		}
	}
	_, own := solveLU(a3, b3, n)
	var sol mat.VecDense
	if err := sol.SolveVec(A, b); err != nil {
		return beta, false, own
	}
	for p, j := range idx {
		beta[j] = sol.AtVec(p)
	}
	return beta, true, own
}

// TestMedianSelecting: the median by selection is medianOf's to the bit,
// on values with many equal ones, zeros of either sign, NaNs, any length.
func TestMedianSelecting(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 50000 {
		n := rng.IntN(80)
		v := make([]float64, n)
		for i := range v {
			switch rng.IntN(8) {
			case 0:
				v[i] = 0
			case 1:
				v[i] = float64(rng.IntN(4))
			case 2:
				v[i] = -float64(rng.IntN(3))
			default:
				v[i] = rng.NormFloat64() * 10
			}
			if trial%50 == 0 && rng.IntN(10) == 0 {
				v[i] = math.Copysign(0, -1)
			}
			if trial%70 == 0 && rng.IntN(20) == 0 {
				v[i] = math.NaN()
			}
		}
		want := medianOf(v)
		got := medianSelecting(slices.Clone(v))
		if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("trial %d: %v: got %v, want %v", trial, v, got, want)
		}
	}
}

// TestSumQuantileFull: the quantile fit's sums (weights first, then the
// sums, over all three terms without the basis's products by 1, or over
// fewer) are those of a point at a time through add, with the same weight,
// to the bit, NaN and zero weights included.
func TestSumQuantileFull(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	bits := func(e *normalEqs) [9]uint64 {
		var out [9]uint64
		for i, v := range []float64{e.a00, e.a01, e.a02, e.a11, e.a12, e.a22, e.b0, e.b1, e.b2} {
			out[i] = math.Float64bits(v)
		}
		return out
	}
	terms := []struct {
		idx [3]int
		n   int
	}{{[3]int{0, 1, 2}, 3}, {[3]int{1, 2}, 2}, {[3]int{0, 1}, 2}, {[3]int{1}, 1}}
	for trial := range 200 {
		n := 1 + rng.IntN(700)
		us, ys := make([]float64, n), make([]float64, n)
		for i := range us {
			us[i] = rng.Float64() * math.Pow(10, float64(rng.IntN(5)))
			ys[i] = 0.01*us[i] + 0.0002*us[i]*us[i] + rng.NormFloat64()*us[i]*0.01
			switch rng.IntN(50) {
			case 0:
				ys[i] = math.NaN()
			case 1:
				ys[i] = 0.01*us[i] + 0.0002*us[i]*us[i] // on the curve: weight at eps
			}
		}
		beta := [3]float64{0, 0.01, 0.0002}
		tau := []float64{0.1, 0.5, 0}[trial%3]
		eps := 1e-6 * rng.Float64()
		tm := terms[trial%len(terms)]
		fast := newNormalEqs(tm.idx, tm.n)
		fast.sumQuantile(us, ys, beta, tau, eps, make([]float64, n))
		ref := newNormalEqs(tm.idx, tm.n)
		for i, u := range us {
			r := ys[i] - (beta[0] + beta[1]*u + beta[2]*u*u)
			q := tau
			if r < 0 {
				q = 1 - tau
			}
			w := q / math.Max(math.Abs(r), eps)
			if w == 0 {
				continue
			}
			ref.add(w, u, ys[i])
		}
		if bits(&fast) != bits(&ref) {
			t.Fatalf("trial %d (%d points, tau %g, terms %v): sums %v, want %v", trial, n, tau, tm.idx[:tm.n], fast, ref)
		}
	}
}
