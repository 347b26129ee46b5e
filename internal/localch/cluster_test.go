package localch

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// TestCluster starts a 2 × 2 cluster and checks that it is one: every
// server knows the cluster, ON CLUSTER DDL reaches every server, and a
// replicated table written on one replica reads on the other.
func TestCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := StartCluster(ctx, t.TempDir(), ClusterConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	t.Logf("cluster up in %.1fs", time.Since(start).Seconds())
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{c.Servers[0][0].Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS x ON CLUSTER rigwatch",
		"CREATE TABLE x.t ON CLUSTER rigwatch (k UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/x/t', '{replica}') ORDER BY k",
		"INSERT INTO x.t SELECT number FROM system.numbers LIMIT 10",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for s, sh := range c.Servers {
		for r, srv := range sh {
			cc, err := clickhouse.Open(&clickhouse.Options{Addr: []string{srv.Addr}})
			if err != nil {
				t.Fatal(err)
			}
			var shard, replica string
			var n uint64
			if err := cc.QueryRow(ctx, "SELECT substitution FROM system.macros WHERE macro = 'shard'").Scan(&shard); err != nil || shard != ShardMacro(s) {
				t.Errorf("server %d/%d: shard macro %q (%v)", s, r, shard, err)
			}
			if err := cc.QueryRow(ctx, "SELECT substitution FROM system.macros WHERE macro = 'replica'").Scan(&replica); err != nil || replica != ReplicaMacro(s, r) {
				t.Errorf("server %d/%d: replica macro %q (%v)", s, r, replica, err)
			}
			want := uint64(0)
			if s == 0 {
				want = 10
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				err = cc.QueryRow(ctx, "SELECT count() FROM x.t").Scan(&n)
				if (err == nil && n == want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil || n != want {
				t.Errorf("server %s: %d rows (%v), want %d", replica, n, err, want)
			}
			cc.Close()
		}
	}
}

// TestMemberBeforeZooKeeper starts a cluster member while its ZooKeeper is
// not up yet (its DDL worker fails to connect, as it may on a loaded
// machine), and sends it ON CLUSTER DDL as soon as Start returns. 18.16
// segfaults on that unless Start has waited for the worker's session.
func TestMemberBeforeZooKeeper(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var zkPort, tcp, httpPort, inter int
	for _, p := range []*int{&zkPort, &tcp, &httpPort, &inter} {
		var err error
		if *p, err = freePort(); err != nil {
			t.Fatal(err)
		}
	}
	extra := fmt.Sprintf(`  <interserver_http_port>%d</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <macros><shard>01</shard><replica>s1r1</replica></macros>
  <zookeeper><node><host>127.0.0.1</host><port>%d</port></node><session_timeout_ms>6000</session_timeout_ms></zookeeper>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  <remote_servers><solo><shard><replica><host>127.0.0.1</host><port>%d</port></replica></shard></solo></remote_servers>
`, inter, zkPort, tcp)
	zkc := make(chan *ZooKeeper, 1)
	go func() {
		time.Sleep(3 * time.Second)
		zk, err := startZooKeeper(ctx, filepath.Join(dir, "zookeeper"), zkPort, nil)
		if err != nil {
			t.Error(err)
		}
		zkc <- zk
	}()
	srv, err := StartWith(ctx, filepath.Join(dir, "s1r1"), Options{tcp: tcp, http: httpPort, extra: extra, member: true}, nil)
	zk := <-zkc
	defer zk.Stop()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS x ON CLUSTER solo"); err != nil {
		t.Fatalf("ON CLUSTER DDL right after start: %v", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = 'x'").Scan(&n); err != nil || n != 1 {
		t.Errorf("database x: %d (%v), want 1", n, err)
	}
}
