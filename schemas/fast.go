package schemas

import "time"

// FastTime reads a timestamp of the form nearly every input uses,
// 2006-01-02T15:04:05Z, into the same time ParseTime returns, without
// allocating. It reports false for any other form, and for a date or time
// that does not exist; ParseTime then decides.
func FastTime(v []byte) (time.Time, bool) {
	if len(v) != 20 || v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' || v[19] != 'Z' {
		return time.Time{}, false
	}
	y, ok1 := digits(v[0:4])
	mo, ok2 := digits(v[5:7])
	d, ok3 := digits(v[8:10])
	h, ok4 := digits(v[11:13])
	mi, ok5 := digits(v[14:16])
	s, ok6 := digits(v[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) || h > 23 || mi > 59 || s > 59 {
		return time.Time{}, false
	}
	return time.Unix(daysFromCivil(y, mo, d)*86400+int64(h*3600+mi*60+s), 0).UTC(), true
}

// digits reads a run of decimal digits.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days from 1970-01-01 to a proleptic Gregorian
// date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// FastDecimal reads a plain decimal, at most 15 digits with at most one
// point between them, into the float64 strconv.ParseFloat returns: the
// digits are an exact float64 and so is the power of ten they are divided
// by, and one IEEE division rounds correctly (ParseFloat's own exact fast
// path). It reports false for anything else, for ParseFloat to decide.
func FastDecimal(v []byte) (float64, bool) {
	var mant uint64
	nd, frac, dot := 0, 0, false
	for i, c := range v {
		switch {
		case c >= '0' && c <= '9':
			mant = mant*10 + uint64(c-'0')
			if nd++; nd > 15 {
				return 0, false
			}
			if dot {
				frac++
			}
		case c == '.' && !dot && i > 0 && i < len(v)-1:
			dot = true
		default:
			return 0, false
		}
	}
	if nd == 0 {
		return 0, false
	}
	return float64(mant) / pow10[frac], true
}

// FastUint31 reads a run of at most nine decimal digits as a positive
// int32, as strconv.ParseInt reads it; it reports false for anything else
// (a sign, zero, more digits), for ParseInt to decide.
func FastUint31(v []byte) (int32, bool) {
	if len(v) == 0 || len(v) > 9 {
		return 0, false
	}
	n, ok := digits(v)
	return int32(n), ok && n > 0
}

// FastIntervalS reads an interval_s cell, already trimmed, as the CSV
// decoder does: any literal with an integral value within int32 (900,
// +900, 900.0, 9e2), without allocating. It reports false for anything
// else, including zero and below, for the general path to reject.
func FastIntervalS(v []byte) (int32, bool) {
	if n, ok := FastUint31(v); ok {
		return n, true
	}
	n, kind := parseInteger(v)
	return n, kind == intOK && n > 0
}
