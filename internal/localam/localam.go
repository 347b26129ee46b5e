// Package localam runs a private Alertmanager for the tests of rigwatch's
// Alertmanager client: Debian's prometheus-alertmanager package, with its
// configuration and storage in a temporary directory, clustering off, on a
// free loopback port. A test without the package fails, naming it: it never
// skips.
package localam

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binary is Debian's prometheus-alertmanager unless RIGWATCH_ALERTMANAGER
// names another.
func Binary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("RIGWATCH_ALERTMANAGER")
	if p == "" {
		p = "/usr/bin/prometheus-alertmanager"
	}
	if st, err := os.Stat(p); err != nil || st.IsDir() {
		t.Fatalf("the Alertmanager tests need Alertmanager at %s: install Debian's prometheus-alertmanager package (apt-get install -y prometheus-alertmanager) or set RIGWATCH_ALERTMANAGER", p)
	}
	return p
}

// config routes every alert to a receiver that sends nothing: the tests
// read Alertmanager's API, not its notifications.
const config = `route:
  receiver: "null"
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
`

// Server is a running Alertmanager.
type Server struct {
	URL  string // base URL, http://127.0.0.1:PORT
	port int
	dir  string
	bin  string
	cmd  *exec.Cmd
	done chan error
}

// Start starts an Alertmanager on a free port, stopped at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{dir: t.TempDir(), bin: Binary(t)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	if err := os.WriteFile(filepath.Join(s.dir, "alertmanager.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.Restart(t)
	return s
}

// Restart starts the server again on the same port and storage after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.bin,
		"--config.file="+filepath.Join(s.dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(s.dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", s.port),
		"--cluster.listen-address=",
		"--log.level=warn")
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if f, err := os.Create(filepath.Join(s.dir, "alertmanager.log")); err == nil {
		s.cmd.Stdout, s.cmd.Stderr = f, f
		defer f.Close()
	}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("cannot start Alertmanager: %v", err)
	}
	s.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(s.cmd, s.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "alertmanager.log"))
			t.Fatalf("Alertmanager exited at start: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Alertmanager not ready on %s after 30s", s.URL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server; safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Alert is an alert as Alertmanager's API lists it.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Generator   string            `json:"generatorURL"`
	Status      struct {
		State      string   `json:"state"`
		SilencedBy []string `json:"silencedBy"`
	} `json:"status"`
}

// Alerts returns the alerts Alertmanager holds that have not ended.
func (s *Server) Alerts(t testing.TB) map[string]Alert {
	t.Helper()
	var as []Alert
	s.call(t, http.MethodGet, "/api/v2/alerts", nil, &as)
	out := map[string]Alert{}
	for _, a := range as {
		out[a.Labels["alert_id"]] = a
	}
	return out
}

// Silence silences the alerts whose label name equals value for an hour
// and returns the silence's id.
func (s *Server) Silence(t testing.TB, name, value string) string {
	t.Helper()
	now := time.Now().UTC()
	body := map[string]any{
		"matchers":  []map[string]any{{"name": name, "value": value, "isRegex": false, "isEqual": true}},
		"startsAt":  now.Add(-time.Minute),
		"endsAt":    now.Add(time.Hour),
		"createdBy": "rigwatch test",
		"comment":   "crew on site",
	}
	var out struct {
		ID string `json:"silenceID"`
	}
	s.call(t, http.MethodPost, "/api/v2/silences", body, &out)
	if out.ID == "" {
		t.Fatal("Alertmanager returned no silence id")
	}
	return out.ID
}

func (s *Server) call(t testing.TB, method, path string, body, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd *strings.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	} else {
		rd = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s", method, path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}
