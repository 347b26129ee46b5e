package schemas

import "math"

// Integer fields accept any number with an integral value, however it is
// written: 900, 900.0, 9e2, 9.0e2 and 90000e-2 all mean 900, because many
// producers (Python's json module among them) write every number as a
// float. The decision is exact, on the decimal literal, not on a float64:
// 900.0000000000000001 is not an integer even though it rounds to one.

// integerKind is what parseInteger found in a literal.
type integerKind uint8

const (
	intOK         integerKind = iota // an integer within int32
	intNotNumber                     // not a decimal number at all
	intFractional                    // a number with a fractional part
	intOutOfRange                    // an integer beyond int32
)

// parseInteger reads a decimal number literal, [+-]digits[.digits][(e|E)[+-]digits]
// (a superset of JSON's number grammar; at least one digit before or after
// the point), and reports whether it is an integer within int32. The
// literal is a []byte or a string, so the readers on the hot path convert
// nothing.
func parseInteger[T []byte | string](lit T) (int32, integerKind) {
	i, n := 0, len(lit)
	neg := false
	if i < n && (lit[i] == '+' || lit[i] == '-') {
		neg = lit[i] == '-'
		i++
	}
	intStart := i
	for i < n && isDigit(lit[i]) {
		i++
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < n && lit[i] == '.' {
		i++
		fracStart = i
		for i < n && isDigit(lit[i]) {
			i++
		}
		fracEnd = i
	}
	if intEnd == intStart && fracEnd == fracStart {
		return 0, intNotNumber
	}
	exp := 0
	if i < n && (lit[i] == 'e' || lit[i] == 'E') {
		i++
		expNeg := false
		if i < n && (lit[i] == '+' || lit[i] == '-') {
			expNeg = lit[i] == '-'
			i++
		}
		if i == n {
			return 0, intNotNumber
		}
		for ; i < n && isDigit(lit[i]); i++ {
			if exp < 1e6 { // beyond this every nonzero value is out of range or fractional
				exp = exp*10 + int(lit[i]-'0')
			}
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != n {
		return 0, intNotNumber
	}
	// The significant digits d1 d2 ... with the decimal point after
	// point of them (point may be negative or beyond the digits).
	digit := func(k int) byte {
		if k < intEnd-intStart {
			return lit[intStart+k]
		}
		return lit[fracStart+k-(intEnd-intStart)]
	}
	nd := (intEnd - intStart) + (fracEnd - fracStart)
	point := (intEnd - intStart) + exp
	// An integer first, then within range: a fraction decides the rule
	// even when the integer part would overflow.
	var v int64
	over := false
	for k := 0; k < nd; k++ {
		d := digit(k)
		if k >= point {
			if d != '0' {
				return 0, intFractional
			}
			continue
		}
		if !over {
			v = v*10 + int64(d-'0')
			over = v > math.MaxInt32+1
		}
	}
	for k := max(nd, 0); k < point && v != 0 && !over; k++ { // zeros the exponent adds
		v *= 10
		over = v > math.MaxInt32+1
	}
	if over {
		return 0, intOutOfRange
	}
	if neg {
		v = -v
	}
	if v > math.MaxInt32 || v < math.MinInt32 {
		return 0, intOutOfRange
	}
	return int32(v), intOK
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseIntervalS reads interval_s, the contract's integer field, from its
// literal: a fraction breaks the type; an integer beyond int32 the range,
// as any other value beyond MaxIntervalS does.
func parseIntervalS[T []byte | string](lit T) (int32, error) {
	v, kind := parseInteger(lit)
	switch kind {
	case intNotNumber:
		return 0, fieldErr("interval_s", RuleType, "wrong type: %q is not an integer", clip(string(lit)))
	case intFractional:
		return 0, fieldErr("interval_s", RuleType, "wrong type: %s is not an integer", clip(string(lit)))
	case intOutOfRange:
		return 0, fieldErr("interval_s", RuleRange, "must be > 0 and <= %d, got %s", MaxIntervalS, clip(string(lit)))
	}
	return v, nil
}
