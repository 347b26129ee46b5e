package schemas

import (
	"strconv"
	"testing"
	"time"
)

// checkFast checks the fast readers against ParseTime, strconv.ParseFloat
// and strconv.ParseInt on v: what they take they must read identically.
func checkFast(t *testing.T, v string) (tookTime, tookNum, tookInt bool) {
	t.Helper()
	if got, ok := FastTime([]byte(v)); ok {
		want, err := ParseTime("ts", v)
		if err != nil || got != want {
			t.Fatalf("FastTime(%q) = %v, ParseTime: %v, %v", v, got, want, err)
		}
		tookTime = true
	}
	if got, ok := FastDecimal([]byte(v)); ok {
		want, err := strconv.ParseFloat(v, 64)
		if err != nil || got != want {
			t.Fatalf("FastDecimal(%q) = %v, ParseFloat: %v, %v", v, got, want, err)
		}
		tookNum = true
	}
	if got, ok := FastUint31([]byte(v)); ok {
		want, err := strconv.ParseInt(v, 10, 32)
		if err != nil || int64(got) != want || want <= 0 {
			t.Fatalf("FastUint31(%q) = %v, ParseInt: %v, %v", v, got, want, err)
		}
		tookInt = true
	}
	return
}

func TestFastReaders(t *testing.T) {
	for _, c := range []struct {
		in               string
		time, num, integ bool
	}{
		{"2025-09-30T19:15:00Z", true, false, false},
		{"2024-02-29T23:59:59Z", true, false, false},
		{"2000-01-01T00:00:00Z", true, false, false},
		{"1969-12-31T23:59:59Z", true, false, false},
		{"0001-01-01T00:00:00Z", true, false, false},
		{"2023-02-29T00:00:00Z", false, false, false},
		{"2100-02-29T00:00:00Z", false, false, false},
		{"2025-10-01T24:00:00Z", false, false, false},
		{"2025-10-01T00:00:60Z", false, false, false},
		{"2025-10-01T00:15:00+05:00", false, false, false},
		{"2025-10-01t00:15:00Z", false, false, false},
		{"2.472", false, true, false},
		{"0", false, true, false},
		{"900", false, true, true},
		{"0900", false, true, true},
		{"123456789", false, true, true},
		{"1234567890", false, true, false},
		{"0.1234567890123456", false, false, false},
		{"123456789012345", false, true, false},
		{".5", false, false, false},
		{"5.", false, false, false},
		{"1e3", false, false, false},
		{"-1", false, false, false},
		{"+9", false, false, false},
		{"1.2.3", false, false, false},
	} {
		tt, tn, ti := checkFast(t, c.in)
		if tt != c.time || tn != c.num || ti != c.integ {
			t.Errorf("%q: took time %v, number %v, integer %v; want %v, %v, %v", c.in, tt, tn, ti, c.time, c.num, c.integ)
		}
	}
	// Every second of a leap year's day boundaries, and every day of 2000-2100.
	for d := time.Date(2000, 1, 1, 23, 59, 59, 0, time.UTC); d.Year() < 2101; d = d.Add(24 * time.Hour) {
		if tt, _, _ := checkFast(t, d.Format("2006-01-02T15:04:05Z")); !tt {
			t.Fatalf("FastTime declined %v", d)
		}
	}
}

// FuzzFastReaders checks that the fast readers agree with the standard
// parsers on every input they take.
func FuzzFastReaders(f *testing.F) {
	for _, s := range []string{"2025-09-30T19:15:00Z", "2024-02-29T23:59:59Z", "2.472", "900", "0.000", "99999.99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) { checkFast(t, v) })
}
