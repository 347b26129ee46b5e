package schemas

import "strconv"

// scanReading is the fast path for the commonest input there is, one meter
// reading as a flat JSON object such as
//
//	{"meter_id":"M-1","ts":"2025-10-01T00:15:00Z","kwh":0.734,"interval_s":900}
//
// It reads that shape in one pass without reflection and hands the fields
// to the same buildReading as the encoding/json path. It answers ok=false,
// and the caller decodes with encoding/json instead, for anything whose
// meaning it does not know to be identical there: an unknown or
// differently-cased key, null, a nested value, an escape, a byte outside
// printable ASCII in a string, a number that does not parse, an interval_s
// that is not an integer within int32 (900.0 and 9e2 are), or any syntax
// error. So it never decides what is rejected, or why; FuzzScanReading
// checks that both paths agree on every input.
func scanReading(data []byte) (r Reading, ok bool, err error) {
	var (
		meterID  string
		ts       parsedTime
		kwh      float64
		interval int32
		has      [3]bool // meter_id, kwh, interval_s (ts says itself)
	)
	s := scanner{data: data}
	if !s.byte('{') {
		return r, false, nil
	}
	if !s.byte('}') {
		for {
			key, good := s.str()
			if !good || !s.byte(':') {
				return r, false, nil
			}
			switch string(key) {
			case "meter_id", "ts":
				v, good := s.str()
				if !good {
					return r, false, nil
				}
				if key[0] == 'm' {
					meterID, has[0] = string(v), true
				} else if t, ok := FastTime(v); ok {
					ts = parsedTime{present: true, t: t}
				} else {
					ts.present = true
					ts.t, ts.err = ParseTime("ts", string(v))
				}
			case "kwh":
				lit := s.number()
				v, ok := FastDecimal(lit)
				if !ok {
					var perr error
					v, perr = strconv.ParseFloat(string(lit), 64)
					if len(lit) == 0 || perr != nil {
						return r, false, nil
					}
				}
				kwh, has[1] = v, true
			case "interval_s":
				// 900, 900.0 and 9e2 alike; a fraction or an overflow
				// is left to encoding/json's path to reject.
				lit := s.number()
				v, ok := FastUint31(lit)
				if !ok {
					var kind integerKind
					v, kind = parseInteger(lit)
					if len(lit) == 0 || kind != intOK {
						return r, false, nil
					}
				}
				interval, has[2] = v, true
			default:
				return r, false, nil
			}
			if s.byte(',') {
				continue
			}
			if s.byte('}') {
				break
			}
			return r, false, nil
		}
	}
	s.space()
	if s.i != len(s.data) {
		return r, false, nil
	}
	r, err = readingOf(opt(meterID, has[0]), ts, opt(kwh, has[1]), opt(interval, has[2]))
	return r, true, err
}

func opt[T any](v T, present bool) *T {
	if !present {
		return nil
	}
	return &v
}

// scanner reads the JSON subset scanReading accepts.
type scanner struct {
	data []byte
	i    int
}

func (s *scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte skips white space and then c, reporting whether c was there.
func (s *scanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes, returning its
// bytes (a slice of the input).
func (s *scanner) str() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.data); s.i++ {
		c := s.data[s.i]
		if c == '"' {
			v := s.data[start:s.i]
			s.i++
			return v, true
		}
		if c == '\\' || c < 0x20 || c >= 0x7f {
			return nil, false
		}
	}
	return nil, false
}

// number reads a literal of JSON's number grammar, returning nil when there
// is none.
func (s *scanner) number() (lit []byte) {
	s.space()
	start, d := s.i, s.data
	i := start
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return nil
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return nil
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return nil
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	s.i = i
	return d[start:i]
}
