// Package localch runs a private ClickHouse server from the machine's
// clickhouse-server package, with its data under a directory of ours, on free
// loopback ports. It serves the embedded default (no --clickhouse given) and
// the integration tests.
package localch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// ErrNoBinary is returned when no ClickHouse server binary is on PATH.
var ErrNoBinary = errors.New("clickhouse-server not found on PATH: install it (apt-get install clickhouse-server) or pass --clickhouse HOST:PORT")

// Server is a running private ClickHouse server.
type Server struct {
	// Addr is the native-protocol address, HOST:PORT.
	Addr string
	Dir  string
	// SecureAddr is the TLS native-protocol address, when TLS is on.
	SecureAddr string

	httpPort int
	opts     Options
	cmd      *exec.Cmd
	done     chan error
	log      *zap.Logger
}

const configTmpl = `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{dir}/log/server.log</log><errorlog>{dir}/log/server.err.log</errorlog><size>10M</size><count>2</count></logger>
  <tcp_port>{tcp}</tcp_port>
  <http_port>{http}</http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/tmp/</tmp_path>
  <user_files_path>{dir}/user_files/</user_files_path>
  <format_schema_path>{dir}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>200</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
</yandex>
`

const usersXML = `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>8000000000</max_memory_usage><load_balancing>random</load_balancing></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// binary finds the server: Debian's clickhouse-server, or the single
// clickhouse binary of newer packages run as "clickhouse server".
func binary() (string, []string, error) {
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil, nil
	}
	if p, err := exec.LookPath("clickhouse"); err == nil {
		return p, []string{"server"}, nil
	}
	return "", nil, ErrNoBinary
}

// Options secure a server for tests of the clients' TLS and credentials.
type Options struct {
	Password        string // of the default user; empty: none
	TLSCert, TLSKey string // PEM files; both set: also listen with TLS

	// extra is configuration added to config.xml: a cluster member's
	// ZooKeeper, macros, remote_servers and interserver port.
	extra string
	// member: extra makes the server a cluster member taking ON CLUSTER
	// DDL; Start waits until it can (waitDDLWorker).
	member bool
	// tcp and http fix the ports (StartCluster names them all up front).
	tcp, http int
	// loadBalancing replaces the default profile's load_balancing.
	loadBalancing string
}

// Start starts a server with its files under dir and waits until it accepts
// connections. A server left running in dir by a killed process is stopped
// first.
func Start(ctx context.Context, dir string, log *zap.Logger) (*Server, error) {
	return start(ctx, dir, 0, 0, Options{}, log)
}

// StartWith is Start with a password and TLS.
func StartWith(ctx context.Context, dir string, opts Options, log *zap.Logger) (*Server, error) {
	return start(ctx, dir, opts.tcp, opts.http, opts, log)
}

// Restart starts the server again on the same ports and data, after Stop or
// Kill: an outage as clients see it.
func (s *Server) Restart(ctx context.Context) error {
	_, port, _ := net.SplitHostPort(s.Addr)
	tcp, _ := strconv.Atoi(port)
	n, err := start(ctx, s.Dir, tcp, s.httpPort, s.opts, s.log)
	if err != nil {
		return err
	}
	*s = *n
	return nil
}

func start(ctx context.Context, dir string, tcp, http int, opts Options, log *zap.Logger) (*Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	base := log
	log = log.With(zap.String("component", "localch"))
	bin, pre, err := binary()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"data", "tmp", "log", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("cannot create ClickHouse directory: %w", err)
		}
	}
	stopStale(dir, log)
	if tcp == 0 {
		if tcp, err = freePort(); err != nil {
			return nil, err
		}
	}
	if http == 0 {
		if http, err = freePort(); err != nil {
			return nil, err
		}
	}
	cfg := strings.NewReplacer("{dir}", dir, "{tcp}", strconv.Itoa(tcp), "{http}", strconv.Itoa(http)).Replace(configTmpl)
	cfg = strings.Replace(cfg, "</yandex>", opts.extra+"</yandex>", 1)
	secure := 0
	if opts.TLSCert != "" && opts.TLSKey != "" {
		if secure, err = freePort(); err != nil {
			return nil, err
		}
		cfg = strings.Replace(cfg, "</yandex>", fmt.Sprintf(`  <tcp_port_secure>%d</tcp_port_secure>
  <openSSL><server><certificateFile>%s</certificateFile><privateKeyFile>%s</privateKeyFile><verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile><cacheSessions>true</cacheSessions><disableProtocols>sslv2,sslv3</disableProtocols><preferServerCiphers>true</preferServerCiphers></server></openSSL>
</yandex>`, secure, opts.TLSCert, opts.TLSKey), 1)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	users := strings.Replace(usersXML, "<password></password>", "<password>"+xmlEscape(opts.Password)+"</password>", 1)
	if opts.loadBalancing != "" {
		users = strings.Replace(users, "<load_balancing>random</load_balancing>", "<load_balancing>"+opts.loadBalancing+"</load_balancing>", 1)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(users), 0o600); err != nil {
		return nil, err
	}
	out, err := os.OpenFile(filepath.Join(dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append(pre, "--config-file="+filepath.Join(dir, "config.xml"))...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	// The server dies with us, even when we are killed with SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("cannot start %s: %w", bin, err)
	}
	out.Close()
	_ = os.WriteFile(filepath.Join(dir, "server.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", tcp), Dir: dir, httpPort: http, opts: opts, cmd: cmd, done: make(chan error, 1), log: base}
	if secure != 0 {
		s.SecureAddr = fmt.Sprintf("127.0.0.1:%d", secure)
	}
	go func() { s.done <- cmd.Wait() }()
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	if opts.member {
		if err := s.waitDDLWorker(ctx, 60*time.Second); err != nil {
			s.Stop()
			return nil, err
		}
	}
	log.Info("started private ClickHouse server", zap.String("addr", s.Addr), zap.String("dir", dir))
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	return s.poll(ctx, limit, "did not accept connections", func() (bool, time.Duration) {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil, 100 * time.Millisecond
	})
}

// waitDDLWorker waits until a cluster member can take ON CLUSTER DDL.
// 18.16's DDL worker takes the server's ZooKeeper session in a loop that
// tries again a second after each failure, and a server whose worker has
// no session yet segfaults on the first ON CLUSTER statement it receives
// (a null pointer in zkutil::ZooKeeper::createImpl; the server comes up
// while the worker is still trying). So wait until a query of
// system.zookeeper succeeds (the server's session exists, and the worker
// takes it on its next try), then until 1.5 s pass with no new worker
// error in the error log.
func (s *Server) waitDDLWorker(ctx context.Context, limit time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	probe := fmt.Sprintf("http://127.0.0.1:%d/?query=%s", s.httpPort, url.QueryEscape("SELECT count() FROM system.zookeeper WHERE path = '/'"))
	failures := func() int {
		b, _ := os.ReadFile(filepath.Join(s.Dir, "log", "server.err.log"))
		return strings.Count(string(b), "DDLWorker::run()")
	}
	session := false
	last := -1
	return s.poll(ctx, limit, "had no ZooKeeper session for its DDL worker", func() (bool, time.Duration) {
		if !session {
			resp, err := client.Get(probe)
			if err != nil {
				return false, 100 * time.Millisecond
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if session = resp.StatusCode == http.StatusOK; !session {
				return false, 100 * time.Millisecond
			}
		}
		n := failures()
		done := n == last
		last = n
		return done, 1500 * time.Millisecond
	})
}

// poll calls try until it reports done, waiting as long as try asks
// between calls. It gives up when the server exits, ctx ends or limit
// passes, with an error saying what the server did not do.
func (s *Server) poll(ctx context.Context, limit time.Duration, failed string, try func() (done bool, wait time.Duration)) error {
	deadline := time.Now().Add(limit)
	for {
		done, wait := try()
		if done {
			return nil
		}
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("ClickHouse server exited at start (%v); see %s", err, filepath.Join(s.Dir, "log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ClickHouse server on %s %s within %s; see %s", s.Addr, failed, limit, filepath.Join(s.Dir, "log"))
		}
	}
}

// stopStale stops a server that a killed process left running in dir.
func stopStale(dir string, log *zap.Logger) {
	b, err := os.ReadFile(filepath.Join(dir, "server.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), filepath.Join(dir, "config.xml")) {
		return
	}
	log.Warn("stopping a ClickHouse server left running in the data directory", zap.Int("pid", pid))
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 300; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// Stop terminates the server and waits for it to exit. It is safe to call
// more than once.
func (s *Server) Stop() error {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
	}
	_ = os.Remove(filepath.Join(s.Dir, "server.pid"))
	return nil
}

// Kill stops the server abruptly (SIGKILL), for outage tests.
func (s *Server) Kill() {
	if s != nil && s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
		s.done <- nil
	}
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}
