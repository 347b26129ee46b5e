package registry

import (
	"strings"
	"testing"
)

func TestCatalogueLookup(t *testing.T) {
	cat := DefaultCatalogue()
	for _, c := range []struct {
		name, want string
		w          float64
	}{
		{"Antminer S19j Pro", "Antminer S19j Pro", 3068},
		{"antminer  s19j-pro", "Antminer S19j Pro", 3068},
		{"ANTMINER_S19J_PRO", "Antminer S19j Pro", 3068},
		{"AntminerS19jPro", "Antminer S19j Pro", 3068},
		{"Antminer S17+ 67T", "Antminer S17+ (67T)", 2680},
		{"Antminer S9", "Antminer S9", 1190}, // newest of two variants
		{"whatsminer m30s++", "Whatsminer M30S++", 3472},
		{"Avalon A1366", "Avalon A1366", 3250},
	} {
		m, ok := cat.Lookup(c.name)
		if !ok || m.Name != c.want || m.RatedPowerW != c.w {
			t.Errorf("Lookup(%q) = %+v, %v; want %s at %v W", c.name, m, ok, c.want, c.w)
		}
	}
	if _, ok := cat.Lookup("Antminer S99"); ok {
		t.Error("unknown model found")
	}
	if v := cat.Variants("antminer s9"); len(v) != 2 || v[1].RatedPowerW != 1300 {
		t.Errorf("variants of S9: %+v", v)
	}
	if n := len(cat.Models()); n != 89+9 {
		t.Errorf("%d models, want 98", n)
	}
	if _, err := ParseCatalogue(strings.NewReader("model\nX\n")); err == nil {
		t.Error("catalogue without rated_power_w accepted")
	}
}
