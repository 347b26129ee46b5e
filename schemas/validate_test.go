package schemas

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

// checkIDRunes is checkID as it was before its ASCII pass: every rune
// checked for a control character, then the whole for valid UTF-8.
func checkIDRunes(field, v string, required bool) error {
	if v == "" {
		if required {
			return fieldErr(field, RuleMissing, "required field is missing or empty")
		}
		return nil
	}
	if len(v) > MaxIDLen {
		return fieldErr(field, RuleSize, "longer than %d bytes", MaxIDLen)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fieldErr(field, RuleEncoding, "contains a control character")
		}
	}
	if !utf8.ValidString(v) {
		return fieldErr(field, RuleEncoding, "is not valid UTF-8")
	}
	return nil
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Error() == b.Error()
}

// FuzzCheckID checks that checkID decides every ID, and with the same
// reason, as the rune-by-rune check it replaced.
func FuzzCheckID(f *testing.F) {
	for _, s := range []string{"", "MTR-10010360", "M\x01", "M\x7f", "M\u0085", "Mé", "M\xff", "M\xff\x01", "M\x01\xff", "é\x01", string(make([]byte, MaxIDLen+1))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, required := range []bool{true, false} {
			if got, want := checkID("id", v, required), checkIDRunes("id", v, required); !sameErr(got, want) {
				t.Fatalf("%q: %v, the rune check says %v", v, got, want)
			}
		}
	})
}
