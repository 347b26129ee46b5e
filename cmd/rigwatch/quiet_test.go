package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/rigwatch/rigwatch/internal/testenv"
)

// TestInvestigatorCommandsQuiet runs `registry stats` as a person would:
// on success it writes its report to stdout and nothing to stderr; -v
// brings back the info logs, and serve still logs at info.
func TestInvestigatorCommandsQuiet(t *testing.T) {
	addr, db := testenv.ClickHouseAddr(t), testenv.DatabaseName()
	dir := t.TempDir()
	if err := writeSample(dir); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--clickhouse", addr, "--clickhouse-database", db, "--data-dir", t.TempDir()}
	if out, err := run(t, append([]string{"replay", dir, "--no-detect", "--log-level", "error"}, flags...)...); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	stats := func(extra ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(binary(t), append(append([]string{"registry", "stats"}, flags...), extra...)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Env = withoutEnv("RIGWATCH_LOG_LEVEL")
		if err := cmd.Run(); err != nil {
			t.Fatalf("registry stats %v: %v\n%s", extra, err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	out, errOut := stats()
	if errOut != "" || !strings.Contains(out, "rigs") {
		t.Errorf("registry stats wrote to stderr (want nothing):\n%s\nstdout:\n%s", errOut, out)
	}
	if _, errOut = stats("-v"); !strings.Contains(errOut, "registry loaded") {
		t.Errorf("registry stats -v logged %q, want the info log 'registry loaded'", errOut)
	}
	if _, errOut = stats("--log-level", "info"); !strings.Contains(errOut, "registry loaded") {
		t.Errorf("registry stats --log-level info logged %q, want the info log 'registry loaded'", errOut)
	}
}

func withoutEnv(name string) []string {
	var env []string
	for _, kv := range exec.Command("true").Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// TestLogLevelByCommand: serve and demo log at info, every other command
// at warn, unless -v, --log-level, RIGWATCH_LOG_LEVEL or the config file
// says otherwise.
func TestLogLevelByCommand(t *testing.T) {
	level := func(env string, args ...string) (string, error) {
		t.Helper()
		t.Setenv("RIGWATCH_LOG_LEVEL", env)
		g := &globalFlags{}
		root := newRootWith(g)
		var got string
		// Swap each command's work for a look at the level it would log at.
		var stub func(cs []*cobra.Command)
		stub = func(cs []*cobra.Command) {
			for _, c := range cs {
				c.RunE = func(*cobra.Command, []string) error {
					cfg, err := g.resolve()
					got = cfg.LogLevel
					return err
				}
				c.Args = nil
				stub(c.Commands())
			}
		}
		stub(root.Commands())
		root.SetArgs(args)
		err := root.Execute()
		return got, err
	}
	cases := []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"serve"}, "info"},
		{"", []string{"demo"}, "info"},
		{"", []string{"registry", "stats"}, "warn"},
		{"", []string{"alerts"}, "warn"},
		{"", []string{"feeders"}, "warn"},
		{"", []string{"replay", "x"}, "warn"},
		{"", []string{"migrate"}, "warn"},
		{"", []string{"registry", "stats", "-v"}, "info"},
		{"", []string{"registry", "stats", "-vv"}, "debug"},
		{"", []string{"serve", "-vv"}, "debug"},
		{"", []string{"registry", "stats", "--log-level", "error"}, "error"},
		{"debug", []string{"registry", "stats"}, "debug"},
		{"error", []string{"serve"}, "error"},
		{"error", []string{"serve", "-v"}, "info"},
	}
	for _, c := range cases {
		got, err := level(c.env, c.args...)
		if err != nil || got != c.want {
			t.Errorf("RIGWATCH_LOG_LEVEL=%q rigwatch %v: level %q (%v), want %q", c.env, c.args, got, err, c.want)
		}
	}
	if _, err := level("", "registry", "stats", "-v", "--log-level", "warn"); exitCode(err) != 2 {
		t.Errorf("-v with --log-level: %v, want a usage error", err)
	}
}
