package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/localch"
	"github.com/rigwatch/rigwatch/internal/localkafka"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// selfSigned writes a CA-less self-signed certificate for 127.0.0.1 and
// returns the cert and key paths and the server TLS config.
func selfSigned(t *testing.T) (certFile, keyFile string, cfg *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rigwatch-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, &tls.Config{Certificates: []tls.Certificate{pair}}
}

// TestSecuredServe runs serve against a broker that demands TLS and
// SCRAM-SHA-256 and a ClickHouse that demands a password (and, where the
// local server allows it, TLS): readings flow, and neither secret appears
// in the logs, even at debug level. A wrong password fails in one line that
// does not echo it.
func TestSecuredServe(t *testing.T) {
	const kafkaPass, chPass, apiToken = "kafka-Secr3t-91x", "ch-Secr3t-77q", "rwt_api-Secr3t-55k"
	certFile, keyFile, serverTLS := selfSigned(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	br, err := localkafka.StartWith(t.TempDir(), 0, allTopics(), []kfake.Opt{
		kfake.TLS(serverTLS), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "rigwatch", kafkaPass)})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	ch, err := localch.StartWith(ctx, t.TempDir(), localch.Options{Password: chPass, TLSCert: certFile, TLSKey: keyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Stop()
	chAddr, chTLS := ch.Addr, []string{}
	if ch.SecureAddr != "" && waitFor(10*time.Second, func() bool {
		c, err := net.Dial("tcp", ch.SecureAddr)
		if c != nil {
			c.Close()
		}
		return err == nil
	}) {
		chAddr, chTLS = ch.SecureAddr, []string{"--clickhouse-tls", "--clickhouse-tls-ca", certFile}
	} else {
		t.Log("this ClickHouse does not serve TLS; testing its password only")
	}

	sec := ingest.KafkaSecurity{TLS: true, CAFile: certFile, SASLMechanism: "SCRAM-SHA-256", Username: "rigwatch", Password: kafkaPass}
	dialer, err := sec.Dialer()
	if err != nil {
		t.Fatal(err)
	}
	w := ingest.NewWriter(br.Addrs(), schemas.Readings.Topic(), dialer)
	defer w.Close()
	db := testenv.DatabaseName()
	args := append([]string{"serve", "--kafka", br.Addrs()[0], "--kafka-tls", "--kafka-tls-ca", certFile,
		"--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-user", "rigwatch",
		"--clickhouse", chAddr, "--clickhouse-database", db, "--http", freeAddr(t),
		"--flush-interval", "200ms", "--log-level", "debug", "--data-dir", t.TempDir()}, chTLS...)
	logFile := filepath.Join(t.TempDir(), "serve.log")
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "RIGWATCH_KAFKA_SASL_PASSWORD="+kafkaPass, "RIGWATCH_CLICKHOUSE_PASSWORD="+chPass, "RIGWATCH_API_TOKEN="+apiToken)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: logFile, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	defer cmd.Process.Kill()

	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	want, err := produce(pctx, br.Addrs(), load{meters: 1, steps: 1, seed: 9}) // a plain client must be refused
	pcancel()
	if err == nil && len(want) > 0 {
		t.Error("the broker accepted a client without TLS and SASL: the test proves nothing")
	}
	msgs := []byte(`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1.25}`)
	if err := w.WriteMessages(ctx, kafkaMsg("M1", msgs)); err != nil {
		t.Fatalf("secured producer: %v", err)
	}
	opts := store.Config{Addr: ch.Addr, Database: db, Password: chPass}
	if !waitFor(40*time.Second, func() bool {
		st, err := store.Open(ctx, opts, nil)
		if err != nil {
			return false
		}
		defer st.Close()
		tot, err := st.ReadingTotals(ctx)
		return err == nil && tot.Rows == 1 && tot.KWh == 1.25
	}) {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump, to see where it hangs
		<-p.done
		b, _ := os.ReadFile(logFile)
		t.Fatalf("the reading never arrived through the secured path; log:\n%s", b)
	}
	// The API token works, travels in a URL too, and still stays out of logs.
	httpAddr := args[slices.Index(args, "--http")+1]
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/api/v1/whoami", apiToken, 200},
		{"/api/v1/whoami", "wrong", 401},
		{"/api/v1/alerts?status=open", apiToken, 200},
	} {
		req, _ := http.NewRequest("GET", "http://"+httpAddr+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s with token %q: %d, want %d", c.path, c.token[:3], resp.StatusCode, c.want)
		}
	}
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	req, _ := http.NewRequestWithContext(sctx, "GET", "http://"+httpAddr+"/api/v1/alerts/stream?access_token="+apiToken, nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		if resp.StatusCode != 200 {
			t.Errorf("SSE with access_token: %d", resp.StatusCode)
		}
		resp.Body.Close()
	}
	scancel()
	sigterm(p)
	<-p.done
	logs, _ := os.ReadFile(logFile)
	for _, secret := range []string{kafkaPass, chPass, apiToken} {
		if strings.Contains(string(logs), secret) {
			t.Errorf("a secret appears in the log")
		}
	}

	// A wrong ClickHouse password: one line, exit 1, no echo of it.
	bad := exec.Command(binary(t), "migrate", "--clickhouse", ch.Addr, "--clickhouse-database", db, "--log-level", "error")
	bad.Env = append(os.Environ(), "RIGWATCH_CLICKHOUSE_PASSWORD=wrong-"+chPass)
	out, err := bad.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("wrong password: %v, want exit 1", err)
	}
	if strings.Contains(string(out), chPass) || strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
		t.Errorf("wrong password output is not one secret-free line: %q", out)
	}
}
