package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// KafkaSecurity says how to reach a secured Kafka: TLS and SASL. The zero
// value is plain TCP without authentication.
type KafkaSecurity struct {
	TLS                bool
	CAFile             string // PEM bundle to trust; empty: the system's
	InsecureSkipVerify bool
	SASLMechanism      string // "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	Username           string
	Password           string // never logged
}

// TLSConfig builds a client TLS configuration from a CA file; nil when
// enable is false.
func TLSConfig(enable bool, caFile string, insecure bool) (*tls.Config, error) {
	if !enable {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s holds no PEM certificate", caFile)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// Dialer returns the kafka-go dialer for these settings; nil for plain TCP.
func (k KafkaSecurity) Dialer() (*kafka.Dialer, error) {
	t, err := TLSConfig(k.TLS, k.CAFile, k.InsecureSkipVerify)
	if err != nil {
		return nil, err
	}
	var mech sasl.Mechanism
	switch strings.ToUpper(k.SASLMechanism) {
	case "":
	case "PLAIN":
		mech = plain.Mechanism{Username: k.Username, Password: k.Password}
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		algo := scram.SHA256
		if strings.HasSuffix(strings.ToUpper(k.SASLMechanism), "512") {
			algo = scram.SHA512
		}
		if mech, err = scram.Mechanism(algo, k.Username, k.Password); err != nil {
			return nil, fmt.Errorf("cannot set up SASL %s: %w", k.SASLMechanism, err)
		}
	default:
		return nil, fmt.Errorf("unknown SASL mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", k.SASLMechanism)
	}
	if t == nil && mech == nil {
		return nil, nil
	}
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: t, SASLMechanism: mech}, nil
}
