package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newMigrateCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create the ClickHouse database and apply pending migrations",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := openRuntime(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			defer rt.close()
			fmt.Fprintf(cmd.OutOrStdout(), "database %s is up to date\n", rt.store.Database())
			return nil
		},
	}
}
