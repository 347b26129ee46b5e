// Command rigwatch keeps the register of crypto-mining equipment and watches
// smart-meter data for electricity theft. This package is wiring only: flags,
// environment, config file, building components and running them.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// usageError marks an error of the command line itself: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRoot()
	stopProfile := startCPUProfile(os.Getenv("RIGWATCH_CPUPROFILE"))
	err := root.ExecuteContext(ctx)
	stopProfile()
	stop()
	if err == nil {
		return
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(msg) > 600 {
		msg = msg[:600] + " ..."
	}
	fmt.Fprintln(os.Stderr, "rigwatch: "+msg)
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		os.Exit(2)
	}
	os.Exit(1)
}

// isCobraUsage recognises the errors cobra raises for the command line
// before any of our code runs.
func isCobraUsage(err error) bool {
	m := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "invalid argument", "flag needs an argument", "accepts ", "requires at least", "required flag"} {
		if strings.HasPrefix(m, p) || strings.Contains(m, " "+p) {
			return true
		}
	}
	return false
}

func newRoot() *cobra.Command { return newRootWith(&globalFlags{}) }

// newRootWith builds the command tree around g, which the commands resolve
// their configuration from.
func newRootWith(g *globalFlags) *cobra.Command {
	root := &cobra.Command{
		Use:           "rigwatch",
		Short:         "Register of crypto-mining equipment and electricity-theft detection",
		SilenceUsage:  true,
		SilenceErrors: true,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true,
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	g.register(root)
	root.AddCommand(
		newServeCmd(g),
		newReplayCmd(g),
		newMigrateCmd(g),
		newDemoCmd(g),
		newSimulateCmd(),
		newScoreCmd(),
		newCalcCmd(g), newRegistryCmd(g),
		newAlertsCmd(g), newFeedersCmd(g), newFeederCmd(g), newEvidenceCmd(g), newTokenCmd(g),
	)
	for _, c := range root.Commands() {
		c.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	}
	return root
}

// exactArgs is cobra.ExactArgs returning a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s (got %d arguments)", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

func lookupEnv(k string) string { return os.Getenv(k) }
