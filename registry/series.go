package registry

// step is one change point of a capacity series: from at on, the series
// holds mw milliwatts over n rigs. Integer milliwatts keep the many
// additions and removals exact, so capacity returns to exactly zero.
type step struct {
	at int64
	mw int64
	n  int64
}

// series is a piecewise-constant capacity over time: zero before the first
// step, then the value of the last step at or before t. Steps are sorted by
// at and no step repeats its predecessor's value.
type series struct {
	steps []step
}

// valueAt is the hot path of SiteCapacityW: a binary search, no allocation.
func (s *series) valueAt(t int64) (mw, n int64) {
	st := s.steps
	lo, hi := 0, len(st)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if st[m].at <= t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0, 0
	}
	return st[lo-1].mw, st[lo-1].n
}

// add adds (dmw, dn) over [from, to). Adding at the end of the series, the
// usual case for records arriving in time order, costs O(1).
func (s *series) add(from, to, dmw, dn int64) {
	if from >= to || (dmw == 0 && dn == 0) {
		return
	}
	i := s.split(from)
	j := len(s.steps)
	if to != maxTime {
		j = s.split(to)
	}
	for k := i; k < j; k++ {
		s.steps[k].mw += dmw
		s.steps[k].n += dn
	}
	s.coalesce(j)
	s.coalesce(i)
}

// split makes a step start at t and returns its index.
func (s *series) split(t int64) int {
	st := s.steps
	lo, hi := 0, len(st)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if st[m].at < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(st) && st[lo].at == t {
		return lo
	}
	var prev step
	if lo > 0 {
		prev = st[lo-1]
	}
	prev.at = t
	st = append(st, step{})
	copy(st[lo+1:], st[lo:])
	st[lo] = prev
	s.steps = st
	return lo
}

// coalesce drops step k if it repeats its predecessor's value.
func (s *series) coalesce(k int) {
	if k < 0 || k >= len(s.steps) {
		return
	}
	var prev step
	if k > 0 {
		prev = s.steps[k-1]
	}
	if s.steps[k].mw == prev.mw && s.steps[k].n == prev.n {
		s.steps = append(s.steps[:k], s.steps[k+1:]...)
	}
}

// push appends a change at t >= the last step: the rebuild path, fed with
// deltas in time order.
func (s *series) push(t, dmw, dn int64) {
	last := len(s.steps) - 1
	if last >= 0 && s.steps[last].at == t {
		s.steps[last].mw += dmw
		s.steps[last].n += dn
		s.coalesce(last)
		return
	}
	var prev step
	if last >= 0 {
		prev = s.steps[last]
	}
	if dmw == 0 && dn == 0 {
		return
	}
	s.steps = append(s.steps, step{at: t, mw: prev.mw + dmw, n: prev.n + dn})
}

// breakpoints appends the step instants in [from, to) to dst.
func (s *series) breakpoints(dst []int64, from, to int64) []int64 {
	for _, st := range s.steps {
		if st.at >= from && st.at < to {
			dst = append(dst, st.at)
		}
	}
	return dst
}
