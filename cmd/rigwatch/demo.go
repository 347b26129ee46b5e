package main

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

//go:embed sample
var sampleFS embed.FS

// newDemoCmd is, until the live demo lands, a replay of the bundled sample
// on the embedded default, printing what was stored.
func newDemoCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run rigwatch on the embedded default: replay a bundled sample and show what was stored",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := openRuntime(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			defer rt.close()
			dir := filepath.Join(rt.cfg.DataDir, "demo-sample")
			if err := writeSample(dir); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "ClickHouse: %s (database %s); replaying %s\n", clickhouseAddr(rt), rt.store.Database(), dir)
			sum, err := replayFiles(cmd.Context(), rt, dir)
			if err != nil {
				return err
			}
			if err := printSummary(out, sum, false); err != nil {
				return err
			}
			tot, err := rt.store.ReadingTotals(cmd.Context())
			if err != nil {
				return err
			}
			counts, err := rt.store.TableCounts(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "stored: %d licences, %d rigs, %d meters, %d purchases, %d rejects\n",
				counts["licenses"], counts["rigs"], counts["meters"], counts["purchases"], counts["rejects"])
			fmt.Fprintf(out, "stored readings: %d distinct from %d meters, %.1f kWh in all\n", tot.Rows, tot.Meters, tot.KWh)
			return nil
		},
	}
}

func clickhouseAddr(rt *runtime) string {
	if rt.ch != nil {
		return rt.ch.Addr + " (private server under " + rt.ch.Dir + ")"
	}
	return rt.cfg.ClickHouse
}

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
