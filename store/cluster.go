package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2"
	"go.uber.org/zap"
)

// clusterSettings go with every query in cluster mode. ClickHouse 18.16's
// protocol carries only numeric settings from this client; the string one
// rigwatch needs, load_balancing = in_order, comes from the user's profile,
// and Open checks it (docs/cluster.md).
//
//   - insert_distributed_sync: an INSERT into a Distributed table returns
//     only once every shard has stored its rows, so offsets are committed
//     for stored data only; a shard that cannot store fails the INSERT.
//   - prefer_localhost_replica = 0 with load_balancing = in_order: reads of
//     a shard go to its first replica that answers, whichever server
//     coordinates them. Writes go there too, except that 18.16 writes the
//     coordinating server's own shard locally: so rigwatch coordinates
//     through a first replica (see coordinators).
//   - max_replica_delay_for_distributed_queries: a replica back from an
//     outage is read only once it has caught up to within a second.
var clusterSettings = clickhouse.Settings{
	"insert_distributed_sync":                   1,
	"insert_distributed_timeout":                60,
	"prefer_localhost_replica":                  0,
	"max_replica_delay_for_distributed_queries": 1,
}

// clusterServer is one row of system.clusters.
type clusterServer struct {
	shard, replica uint32
	host, address  string
	port           uint16
}

// checkCluster checks that the server knows the cluster and that reads of a
// shard go to one replica (load_balancing), and returns the configured
// addresses in the order rigwatch should connect to them: see coordinators.
func (s *Store) checkCluster(ctx context.Context, cfg Config) ([]string, error) {
	rows, err := s.conn.Query(ctx, "SELECT shard_num, replica_num, host_name, host_address, port FROM system.clusters WHERE cluster = ?", s.cluster)
	if err != nil {
		return nil, fmt.Errorf("cannot read the cluster %s from system.clusters: %w", s.cluster, err)
	}
	var servers []clusterServer
	for rows.Next() {
		var c clusterServer
		if err := rows.Scan(&c.shard, &c.replica, &c.host, &c.address, &c.port); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot read the cluster %s from system.clusters: %w", s.cluster, err)
		}
		servers = append(servers, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the cluster %s from system.clusters: %w", s.cluster, err)
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("ClickHouse knows no cluster %q: name one of its remote_servers", s.cluster)
	}
	var lb string
	if err := s.conn.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = 'load_balancing'").Scan(&lb); err != nil {
		return nil, fmt.Errorf("cannot read the load_balancing setting: %w", err)
	}
	if lb != "in_order" && lb != "first_or_random" {
		return nil, fmt.Errorf("cluster mode needs load_balancing = 'in_order' in the profile of ClickHouse user %s (it is %q), so that reads go to the replica that took the writes; see docs/cluster.md", cfg.Username, lb)
	}
	addrs := coordinators(cfg.Addrs(), servers, rand.IntN)
	shards := map[uint32]bool{}
	for _, c := range servers {
		shards[c.shard] = true
	}
	s.log.Info("cluster mode", zap.String("cluster", s.cluster), zap.Int("shards", len(shards)), zap.Int("servers", len(servers)), zap.Strings("connect_order", addrs))
	return addrs, nil
}

// coordinators orders the configured addresses for connecting, first to
// answer first. ClickHouse 18.16 writes a Distributed INSERT's rows for the
// coordinating server's own shard to that server, whatever load_balancing
// says; reads go to a shard's first replica. So the first replicas of the
// shards come first (from a shard picked by pick, spreading the processes
// of a deployment over them), then the second replicas, and so on;
// addresses the cluster does not list (a load balancer, say) come last.
// While a first replica is down its shard is read from, and written to, its
// second.
func coordinators(addrs []string, servers []clusterServer, pick func(int) int) []string {
	rank := func(a string) (replica, shard uint32, ok bool) {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return 0, 0, false
		}
		p, _ := strconv.Atoi(port)
		for _, c := range servers {
			if int(c.port) == p && (c.host == host || c.address == host) {
				return c.replica, c.shard, true
			}
		}
		return 0, 0, false
	}
	type ranked struct {
		addr           string
		replica, shard uint32
		known          bool
	}
	rs := make([]ranked, len(addrs))
	var shards uint32
	for i, a := range addrs {
		rs[i].addr = a
		rs[i].replica, rs[i].shard, rs[i].known = rank(a)
		shards = max(shards, rs[i].shard)
	}
	start := uint32(0)
	if shards > 0 {
		start = uint32(pick(int(shards)))
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.known != b.known {
			return a.known
		}
		if a.replica != b.replica {
			return a.replica < b.replica
		}
		return (a.shard+shards-1-start)%max(shards, 1) < (b.shard+shards-1-start)%max(shards, 1)
	})
	out := make([]string, len(rs))
	for i := range rs {
		out[i] = rs[i].addr
	}
	return out
}
