package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/rigwatch/rigwatch/api"
	"github.com/rigwatch/rigwatch/investigate"
	"github.com/rigwatch/rigwatch/store"
)

// rigwatchVersion is the module version or VCS revision of this build.
func rigwatchVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	if v == "" {
		return "dev"
	}
	return v
}

func newEvidenceCmd(g *globalFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "evidence ALERT_ID --out DIR",
		Short: "Export an alert's evidence bundle (readings, registry state, computation, report, SHA-256 manifest)",
		Args:  exactArgs(1, "an alert id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("--out DIR is required")
			}
			id, err := api.ParseID("alert", args[0])
			if err != nil {
				return usageError{err}
			}
			ctx := cmd.Context()
			inv, err := openInvestigation(ctx, g, true)
			if err != nil {
				return err
			}
			defer inv.close()
			b, err := inv.q.Evidence(ctx, id, inv.who)
			inv.audit(ctx, "export evidence", map[string]any{"id": id, "out": out}, err)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no alert %s", id)
			}
			if err != nil {
				return err
			}
			if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
				return fmt.Errorf("%s is not empty: evidence goes into a new or empty directory", out)
			}
			if err := b.WriteDir(out); err != nil {
				return err
			}
			abs, _ := filepath.Abs(out)
			fmt.Fprintf(cmd.OutOrStdout(), "evidence for alert %s in %s: %d files; check with: rigwatch evidence verify %s\n", id, abs, len(b.Names()), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the bundle into (new or empty)")
	cmd.AddCommand(&cobra.Command{
		Use:   "verify DIR",
		Short: "Check an evidence bundle against its SHA-256 manifest; names every file that does not match",
		Args:  exactArgs(1, "a bundle directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := investigate.VerifyDir(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: every file matches %s\n", args[0], investigate.ManifestName)
			return nil
		},
	})
	return cmd
}
