package localch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// ZooKeeperJar is where Debian's zookeeper package installs the server; the
// jar's manifest names the libraries it needs.
const ZooKeeperJar = "/usr/share/java/zookeeper.jar"

// slf4jSimple, from Debian's libslf4j-java, gives ZooKeeper a log.
const slf4jSimple = "/usr/share/java/slf4j-simple.jar"

// ErrNoZooKeeper is returned when Java or Debian's ZooKeeper is missing.
var ErrNoZooKeeper = errors.New("ZooKeeper not found: install Debian's zookeeper package (apt-get install zookeeper)")

// ZooKeeper is a standalone ZooKeeper server on a loopback port, from
// Debian's zookeeper package, with its data under a directory of ours. It
// coordinates a test cluster's replicas and ON CLUSTER DDL.
type ZooKeeper struct {
	// Addr is the client address, HOST:PORT.
	Addr string
	Dir  string

	port int
	cmd  *exec.Cmd
	done chan error
	log  *zap.Logger
}

// The admin server is off: it would take port 8080. A tick of 500 ms lets
// clients ask for sessions from 1 s to 10 s.
const zooCfg = `tickTime=500
initLimit=10
syncLimit=5
dataDir={dir}/data
clientPort={port}
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr
`

// StartZooKeeper starts ZooKeeper with its files under dir and waits until
// it answers.
func StartZooKeeper(ctx context.Context, dir string, log *zap.Logger) (*ZooKeeper, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return startZooKeeper(ctx, dir, port, log)
}

func startZooKeeper(ctx context.Context, dir string, port int, log *zap.Logger) (*ZooKeeper, error) {
	if log == nil {
		log = zap.NewNop()
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, ErrNoZooKeeper
	}
	if _, err := os.Stat(ZooKeeperJar); err != nil {
		return nil, ErrNoZooKeeper
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create ZooKeeper directory: %w", err)
	}
	cfg := strings.NewReplacer("{dir}", dir, "{port}", strconv.Itoa(port)).Replace(zooCfg)
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	out, err := os.OpenFile(filepath.Join(dir, "zookeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cp := ZooKeeperJar
	if _, err := os.Stat(slf4jSimple); err == nil {
		cp += ":" + slf4jSimple // warnings to zookeeper.log rather than nowhere
	}
	cmd := exec.Command(java, "-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dorg.slf4j.simpleLogger.defaultLogLevel=info", "-Dorg.slf4j.simpleLogger.showDateTime=true",
		"-Dzookeeper.log.dir="+dir, "-cp", cp,
		"org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(dir, "zoo.cfg"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start ZooKeeper: %w", err)
	}
	z := &ZooKeeper{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, port: port, cmd: cmd, done: make(chan error, 1), log: log}
	go func() { z.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for !z.ok() {
		select {
		case err := <-z.done:
			z.done <- err
			return nil, fmt.Errorf("ZooKeeper exited at start (%v); see %s", err, filepath.Join(dir, "zookeeper.log"))
		case <-ctx.Done():
			z.Kill()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			z.Kill()
			return nil, fmt.Errorf("ZooKeeper did not answer on %s within a minute; see %s", z.Addr, dir)
		}
	}
	log.Info("started ZooKeeper", zap.String("component", "localch"), zap.String("addr", z.Addr), zap.String("dir", dir))
	return z, nil
}

// ok asks ZooKeeper whether it serves sessions: "srvr" names the mode
// only then ("ruok" answers "imok" before the database is loaded, and
// ClickHouse 18.16 crashes on ON CLUSTER DDL without a first session).
func (z *ZooKeeper) ok() bool {
	c, err := net.DialTimeout("tcp", z.Addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return false
	}
	b, _ := io.ReadAll(io.LimitReader(c, 4096))
	return strings.Contains(string(b), "Mode: standalone")
}

// Kill stops ZooKeeper abruptly (SIGKILL), for outage tests. Safe to call
// twice.
func (z *ZooKeeper) Kill() {
	if z == nil || z.cmd == nil || z.cmd.Process == nil {
		return
	}
	_ = z.cmd.Process.Kill()
	err := <-z.done
	z.done <- err
}

// Stop stops ZooKeeper. Its data stays for Restart. Safe to call twice.
func (z *ZooKeeper) Stop() {
	if z == nil || z.cmd == nil || z.cmd.Process == nil {
		return
	}
	_ = z.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-z.done:
		z.done <- err
	case <-time.After(10 * time.Second):
		z.Kill()
	}
}

// Restart starts ZooKeeper again on the same port and data, after Stop or
// Kill.
func (z *ZooKeeper) Restart(ctx context.Context) error {
	n, err := startZooKeeper(ctx, z.Dir, z.port, z.log)
	if err != nil {
		return err
	}
	*z = *n
	return nil
}
