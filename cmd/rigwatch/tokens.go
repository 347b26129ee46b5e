package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rigwatch/rigwatch/store"
)

func newTokenCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage API tokens: create, list, revoke",
		Args:  exactArgs(0, "a subcommand: create, list or revoke"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef("%s needs a subcommand: create, list or revoke", cmd.CommandPath())
		},
	}
	var name, role string
	create := &cobra.Command{
		Use:   "create --name NAME --role operator|investigator|admin",
		Short: "Create a token and print it: it is shown this once, and stored only as a SHA-256 hash",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !store.ValidTokenName(name) {
				return usagef("--name %q: want 1-64 letters, digits or _.@-", name)
			}
			if store.RoleRank(role) == 0 {
				return usagef("--role %q: want operator, investigator or admin", role)
			}
			ctx := cmd.Context()
			inv, err := openInvestigation(ctx, g, false)
			if err != nil {
				return err
			}
			defer inv.close()
			secret, t, err := inv.rt.store.CreateToken(ctx, name, role)
			inv.audit(ctx, "create token", map[string]any{"name": name, "role": role}, err)
			if errors.Is(err, store.ErrTokenExists) {
				return fmt.Errorf("a live token is named %s: revoke it first or pick another name", name)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s (%s) created; it is shown only now\n", t.Name, t.Role)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "token name (who holds it)")
	create.Flags().StringVar(&role, "role", "", "operator, investigator or admin")
	var out outFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (names, roles, revocation; never the tokens)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			inv, err := openInvestigation(ctx, g, false)
			if err != nil {
				return err
			}
			defer inv.close()
			ts, err := inv.rt.store.ListTokens(ctx)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out.json {
				if ts == nil {
					ts = []store.Token{}
				}
				return writeJSON(w, ts)
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			sep := "\t"
			if out.csv {
				sep = ","
			}
			fmt.Fprintf(tw, "name%srole%screated_at%srevoked_at\n", sep, sep, sep)
			for _, t := range ts {
				rev := ""
				if t.RevokedAt != nil {
					rev = t.RevokedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s%s%s%s%s%s%s\n", t.Name, sep, t.Role, sep, t.CreatedAt.Format(time.RFC3339), sep, rev)
			}
			return tw.Flush()
		},
	}
	out.register(list)
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token at once",
		Args:  exactArgs(1, "a token name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !store.ValidTokenName(args[0]) {
				return usagef("%q is not a token name", args[0])
			}
			ctx := cmd.Context()
			inv, err := openInvestigation(ctx, g, false)
			if err != nil {
				return err
			}
			defer inv.close()
			_, err = inv.rt.store.RevokeToken(ctx, args[0])
			inv.audit(ctx, "revoke token", map[string]any{"name": args[0]}, err)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no token named %s", args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
