package main

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

// sampleFS is a small set of replay files with duplicates, a correction
// and bad rows in it: 37 distinct readings of 4 meters, 106.084 kWh, and
// 15 rejects (1 licence, 1 meter, 2 rigs, 1 purchase, 10 readings).
//
//go:embed sample
var sampleFS embed.FS

func writeSample(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return fs.WalkDir(sampleFS, "sample", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := sampleFS.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644)
	})
}
