package schemas

import "testing"

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Error() == b.Error()
}

// FuzzCheckID checks that checkID's pass over ASCII IDs a byte at a time
// decides every ID, with the same reason, as checking it rune by rune.
func FuzzCheckID(f *testing.F) {
	for _, s := range []string{"MTR-10010360", "M\x01", "M\x7f", "M\u0085", "Mé", "M\xff", "M\xff\x01", "M\x01\xff", "é\x01", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if v == "" || len(v) > MaxIDLen {
			return
		}
		if got, want := checkID("id", v, true), checkRunes("id", v); !sameErr(got, want) {
			t.Fatalf("%q: %v, rune by rune %v", v, got, want)
		}
	})
}
