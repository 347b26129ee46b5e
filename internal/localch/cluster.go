package localch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// ClusterConfig shapes a local cluster. The zero value of each field takes
// the default named beside it.
type ClusterConfig struct {
	Name     string // the cluster's name in remote_servers; default "rigwatch"
	Shards   int    // default 2
	Replicas int    // per shard; default 2
	// LoadBalancing is the default profile's load_balancing; default
	// "in_order", which rigwatch's cluster mode requires.
	LoadBalancing string
}

// Cluster is a ClickHouse cluster on loopback ports: Shards × Replicas
// servers of the machine's clickhouse-server, each with its own macros
// ({shard}, {replica}), the same remote_servers and one standalone
// ZooKeeper coordinating replication and ON CLUSTER DDL. Every part can be
// stopped, killed and restarted on its ports and data, for outage tests.
type Cluster struct {
	Name string
	ZK   *ZooKeeper
	// Servers[s][r] is replica r of shard s (0-based), in remote_servers
	// order.
	Servers [][]*Server
}

// Addrs returns the native addresses of every server, shard by shard.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, sh := range c.Servers {
		for _, s := range sh {
			out = append(out, s.Addr)
		}
	}
	return out
}

// Stop stops every server, then ZooKeeper. Safe to call twice.
func (c *Cluster) Stop() {
	if c == nil {
		return
	}
	var wg sync.WaitGroup
	for _, sh := range c.Servers {
		for _, s := range sh {
			wg.Add(1)
			go func() { defer wg.Done(); _ = s.Stop() }()
		}
	}
	wg.Wait()
	c.ZK.Stop()
}

// ShardMacro and ReplicaMacro are the values of {shard} and {replica} on
// replica r of shard s (0-based).
func ShardMacro(s int) string      { return fmt.Sprintf("%02d", s+1) }
func ReplicaMacro(s, r int) string { return fmt.Sprintf("s%dr%d", s+1, r+1) }

// StartCluster starts ZooKeeper and the servers of a cluster under dir and
// waits until every server answers and ZooKeeper serves.
func StartCluster(ctx context.Context, dir string, cfg ClusterConfig, log *zap.Logger) (*Cluster, error) {
	if cfg.Name == "" {
		cfg.Name = "rigwatch"
	}
	if cfg.Shards == 0 {
		cfg.Shards = 2
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 2
	}
	if cfg.LoadBalancing == "" {
		cfg.LoadBalancing = "in_order"
	}
	if cfg.Shards < 1 || cfg.Replicas < 1 || cfg.Shards*cfg.Replicas > 16 {
		return nil, fmt.Errorf("a local cluster of %d shards × %d replicas: want 1 to 16 servers", cfg.Shards, cfg.Replicas)
	}
	if _, _, err := binary(); err != nil {
		return nil, err
	}
	zk, err := StartZooKeeper(ctx, filepath.Join(dir, "zookeeper"), log)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Name: cfg.Name, ZK: zk}
	type ports struct{ tcp, http, inter int }
	pp := make([][]ports, cfg.Shards)
	var remote strings.Builder
	remote.WriteString("  <remote_servers><" + cfg.Name + ">\n")
	for s := range pp {
		remote.WriteString("    <shard><internal_replication>true</internal_replication>\n")
		pp[s] = make([]ports, cfg.Replicas)
		for r := range pp[s] {
			p := &pp[s][r]
			for _, n := range []*int{&p.tcp, &p.http, &p.inter} {
				if *n, err = freePort(); err != nil {
					zk.Kill()
					return nil, err
				}
			}
			fmt.Fprintf(&remote, "      <replica><host>127.0.0.1</host><port>%d</port></replica>\n", p.tcp)
		}
		remote.WriteString("    </shard>\n")
	}
	remote.WriteString("  </" + cfg.Name + "></remote_servers>\n")
	// The session expiry and replica delay checks run every 60 s by
	// default: a replica would stay read-only that long after ZooKeeper
	// came back.
	common := fmt.Sprintf(`  <interserver_http_host>127.0.0.1</interserver_http_host>
  <zookeeper><node><host>127.0.0.1</host><port>%d</port></node><session_timeout_ms>6000</session_timeout_ms></zookeeper>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  <merge_tree><zookeeper_session_expiration_check_period>2</zookeeper_session_expiration_check_period><check_delay_period>2</check_delay_period></merge_tree>
`, zk.port) + remote.String()

	c.Servers = make([][]*Server, cfg.Shards)
	errs := make(chan error, cfg.Shards*cfg.Replicas)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for s := range pp {
		c.Servers[s] = make([]*Server, cfg.Replicas)
		for r := range pp[s] {
			p := pp[s][r]
			opts := Options{tcp: p.tcp, http: p.http, loadBalancing: cfg.LoadBalancing, member: true, extra: fmt.Sprintf("  <interserver_http_port>%d</interserver_http_port>\n  <macros><shard>%s</shard><replica>%s</replica></macros>\n",
				p.inter, ShardMacro(s), ReplicaMacro(s, r)) + common}
			wg.Add(1)
			go func() {
				defer wg.Done()
				srv, err := StartWith(ctx, filepath.Join(dir, ReplicaMacro(s, r)), opts, log)
				if err != nil {
					errs <- fmt.Errorf("server %s: %w", ReplicaMacro(s, r), err)
					return
				}
				mu.Lock()
				c.Servers[s][r] = srv
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		for _, sh := range c.Servers {
			for _, srv := range sh {
				if srv != nil {
					_ = srv.Stop()
				}
			}
		}
		zk.Kill()
		return nil, errors.Join(all...)
	}
	return c, nil
}
