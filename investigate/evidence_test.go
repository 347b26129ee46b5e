package investigate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyDir: a sealed bundle verifies; a changed, missing or added
// file is named.
func TestVerifyDir(t *testing.T) {
	b := &Bundle{AlertID: "A/1", files: map[string][]byte{"alert.json": []byte("{}\n"), "readings.csv": []byte("meter_id,ts,kwh\nM1,2025-10-01T00:15:00Z,1.5\n")}}
	b.seal()
	if b.DirName() != "evidence-A_1" {
		t.Errorf("DirName %q", b.DirName())
	}
	dir := filepath.Join(t.TempDir(), b.DirName())
	if err := b.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := VerifyDir(dir); err != nil {
		t.Fatalf("fresh bundle: %v", err)
	}
	for _, c := range []struct {
		name   string
		break_ func()
		want   string
	}{
		{"changed", func() {
			os.WriteFile(filepath.Join(dir, "readings.csv"), []byte("meter_id,ts,kwh\nM1,2025-10-01T00:15:00Z,9.5\n"), 0o644)
		}, "readings.csv: SHA-256"},
		{"missing", func() { os.Remove(filepath.Join(dir, "alert.json")) }, "alert.json: missing"},
		{"added", func() { os.WriteFile(filepath.Join(dir, "extra.txt"), nil, 0o644) }, "extra.txt: not in the manifest"},
	} {
		c.break_()
		var ve *VerifyError
		if err := VerifyDir(dir); !errors.As(err, &ve) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a VerifyError naming %q", c.name, err, c.want)
		}
	}
}
