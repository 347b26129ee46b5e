// Package testenv starts the real servers integration tests run against: one
// private ClickHouse server per test binary (a database per test) and an
// embedded Kafka-protocol broker per test. Nothing here is a mock.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/localch"
	"github.com/rigwatch/rigwatch/internal/localkafka"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

var (
	chOnce sync.Once
	chSrv  *localch.Server
	chErr  error
)

// ClickHouseAddr returns the address of the binary's shared ClickHouse
// server, starting it on first use; RIGWATCH_TEST_CLICKHOUSE names an
// existing server instead. A test that cannot have one fails: it never
// skips.
func ClickHouseAddr(t testing.TB) string {
	t.Helper()
	if a := os.Getenv("RIGWATCH_TEST_CLICKHOUSE"); a != "" {
		return a
	}
	chOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rigwatch-ch-")
		if err != nil {
			chErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		// The server dies with the test binary (Pdeathsig).
		chSrv, chErr = localch.Start(ctx, dir, nil)
	})
	if chErr != nil {
		t.Fatalf("cannot start ClickHouse for the test: %v", chErr)
	}
	return chSrv.Addr
}

var (
	clusterOnce sync.Once
	clusterSrv  *localch.Cluster
	clusterErr  error
)

// Cluster returns the binary's shared ClickHouse cluster (2 shards × 2
// replicas and ZooKeeper on loopback ports; see localch.StartCluster),
// starting it on first use. Tests that stop or kill servers start a
// cluster of their own with NewCluster instead. A test that cannot have
// one fails: it never skips.
func Cluster(t testing.TB) *localch.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rigwatch-cluster-")
		if err != nil {
			clusterErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// The servers die with the test binary (Pdeathsig).
		clusterSrv, clusterErr = localch.StartCluster(ctx, dir, localch.ClusterConfig{}, nil)
	})
	if clusterErr != nil {
		t.Fatalf("cannot start a ClickHouse cluster for the test: %v", clusterErr)
	}
	return clusterSrv
}

// NewCluster starts a ClickHouse cluster of the test's own, stopped at
// cleanup.
func NewCluster(t testing.TB) *localch.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := localch.StartCluster(ctx, t.TempDir(), localch.ClusterConfig{}, nil)
	if err != nil {
		t.Fatalf("cannot start a ClickHouse cluster for the test: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// ClusterConfig returns a store configuration for a fresh database on
// cluster c.
func ClusterConfig(c *localch.Cluster) store.Config {
	return store.Config{Addr: strings.Join(c.Addrs(), ","), Cluster: c.Name, Database: DatabaseName()}
}

// ClusterStore opens a store in cluster mode on a database of the test's
// own on the shared cluster, dropped at cleanup.
func ClusterStore(t testing.TB) *store.Store {
	t.Helper()
	return open(t, ClusterConfig(Cluster(t)))
}

// DatabaseName returns a fresh database name for one test.
func DatabaseName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "t_" + hex.EncodeToString(b)
}

// Store opens a store on a database of the test's own, dropped at cleanup.
func Store(t testing.TB) *store.Store {
	t.Helper()
	return open(t, store.Config{Addr: ClickHouseAddr(t), Database: DatabaseName()})
}

func open(t testing.TB, cfg store.Config) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("cannot open store: %v", err)
	}
	t.Cleanup(func() {
		_ = st.DropDatabase(context.Background())
		st.Close()
	})
	return st
}

// Broker starts an embedded broker persisted in a temporary directory, with
// topics seeded, closed at cleanup.
func Broker(t testing.TB, topics ...string) *localkafka.Broker {
	t.Helper()
	b, err := localkafka.Start(t.TempDir(), 0, topics...)
	if err != nil {
		t.Fatalf("cannot start embedded broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// BrokerCluster starts n embedded brokers in one cluster (see
// localkafka.StartCluster), persisted in a temporary directory, with topics
// seeded, closed at cleanup.
func BrokerCluster(t testing.TB, n int, topics ...string) *localkafka.Broker {
	t.Helper()
	b, err := localkafka.StartCluster(t.TempDir(), n, topics...)
	if err != nil {
		t.Fatalf("cannot start %d embedded brokers: %v", n, err)
	}
	t.Cleanup(b.Close)
	return b
}

// WriteRegistryCSV writes licences, rigs and meters as contract replay
// files (licenses.csv, rigs.csv, meters.csv) in dir.
func WriteRegistryCSV(t testing.TB, dir string, ls []schemas.License, rs []schemas.Rig, ms []schemas.Meter) {
	t.Helper()
	write := func(s schemas.Stream, n int, row func(i int) []string) {
		f, err := os.Create(filepath.Join(dir, string(s)+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		err = schemas.WriteCSV(f, s, n, row)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("cannot write %s replay file: %v", s, err)
		}
	}
	write(schemas.Licenses, len(ls), func(i int) []string { return ls[i].CSVRow() })
	write(schemas.Rigs, len(rs), func(i int) []string { return rs[i].CSVRow() })
	write(schemas.Meters, len(ms), func(i int) []string { return ms[i].CSVRow() })
}

// WaitFor polls cond every 100 ms until it holds or d has passed, and
// reports whether it held (asked once more at the end).
func WaitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return cond()
}
