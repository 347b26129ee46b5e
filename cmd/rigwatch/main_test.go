package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// run executes the command line as main would, returning stdout and the
// error (a usageError for exit status 2).
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// exitCode classifies an error as main does.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return 2
	}
	return 1
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds rigwatch once per test run, for tests that must kill it.
func binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rigwatch-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "rigwatch")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("cannot build rigwatch: %v", binErr)
	}
	return binPath
}

func TestUsageErrors(t *testing.T) {
	cases := [][]string{
		{"nosuchverb"},
		{"replay"},
		{"replay", "/nonexistent/dir"},
		{"serve", "--no-such-flag"},
		{"replay", t.TempDir(), "--batch-size", "x"},
		{"replay", t.TempDir(), "--log-level", "loud"},
		{"serve", "--alertmanager", "alertmanager:9093"},
		{"demo", "--alertmanager", "ftp://alertmanager:9093"},
		{"serve", "--alertmanager-resend", "0s"},
	}
	for _, args := range cases {
		_, err := run(t, args...)
		if exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
	}
}

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rigwatch.yaml")
	if err := os.WriteFile(file, []byte("batch_size: 7\nkafka: file:9092\nlog_level: warn\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RIGWATCH_KAFKA_BROKERS", "env:9092")
	root := &cobra.Command{Use: "rigwatch"}
	g := &globalFlags{}
	g.register(root)
	if err := root.ParseFlags([]string{"--config", file, "--log-level", "error", "--kafka-tls", "--kafka-tls-ca", "ca.pem"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := g.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BatchSize != 7 || cfg.Kafka != "env:9092" || cfg.LogLevel != "error" || cfg.DataDir != "./.rigwatch" || !cfg.KafkaTLS || cfg.KafkaTLSCA != "ca.pem" {
		t.Errorf("config = %+v: want batch 7 from file, kafka from env, log level from flag, default data dir", cfg)
	}
	if err := os.WriteFile(file, []byte("no_such_key: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := g.resolve(); exitCode(err) != 2 {
		t.Errorf("unknown config key: %v, want a usage error", err)
	}
}

// TestExampleConfig: deployments/rigwatch.example.yaml names only keys
// rigwatch knows, with values it accepts.
func TestExampleConfig(t *testing.T) {
	root := &cobra.Command{Use: "rigwatch"}
	g := &globalFlags{}
	g.register(root)
	g.configFile = filepath.Join("..", "..", "deployments", "rigwatch.example.yaml")
	cfg, err := g.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AlertmanagerURL == "" || cfg.ExternalURL == "" || cfg.AlertmanagerResend != time.Minute {
		t.Errorf("example config: alertmanager %q, external URL %q, resend %s", cfg.AlertmanagerURL, cfg.ExternalURL, cfg.AlertmanagerResend)
	}
}
