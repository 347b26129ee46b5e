package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/rigwatch/rigwatch/internal/localch"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
	"github.com/rigwatch/rigwatch/store"
)

// clusterArgs are the flags that put a command on cluster c.
func clusterArgs(c *localch.Cluster) []string {
	return []string{"--clickhouse", strings.Join(c.Addrs(), ","), "--clickhouse-cluster", c.Name}
}

func openCluster(t *testing.T, ctx context.Context, c *localch.Cluster, db string) *store.Store {
	t.Helper()
	st, err := store.Open(ctx, store.Config{Addr: strings.Join(c.Addrs(), ","), Cluster: c.Name, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestClusterFlags(t *testing.T) {
	for _, args := range [][]string{
		{"migrate", "--clickhouse", "127.0.0.1:1,127.0.0.1:2"},
		{"migrate", "--clickhouse-cluster", "rigwatch"},
		{"migrate", "--clickhouse", "127.0.0.1:1", "--clickhouse-cluster", "no such"},
		{"migrate", "--clickhouse", "127.0.0.1", "--clickhouse-cluster", "rigwatch"},
	} {
		if _, err := run(t, args...); exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
	}
	t.Setenv("RIGWATCH_CLICKHOUSE_CLUSTER", "rigwatch")
	if _, err := run(t, "migrate"); exitCode(err) != 2 || !strings.Contains(err.Error(), "needs the cluster's servers") {
		t.Errorf("RIGWATCH_CLICKHOUSE_CLUSTER without servers: %v, want a usage error", err)
	}
}

// eachServer calls fn with a connection to each server of c, shard by
// shard (s is the shard's index), and stops at fn's first error.
func eachServer(c *localch.Cluster, fn func(s int, addr string, conn driver.Conn) error) error {
	for s, sh := range c.Servers {
		for _, srv := range sh {
			conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{srv.Addr}})
			if err != nil {
				return err
			}
			err = fn(s, srv.Addr, conn)
			conn.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", srv.Addr, err)
			}
		}
	}
	return nil
}

// shardCounts returns the rows of table on each server of c, shard by
// shard, as stored (no FINAL).
func shardCounts(t *testing.T, ctx context.Context, c *localch.Cluster, db, table string) [][]uint64 {
	t.Helper()
	out := make([][]uint64, len(c.Servers))
	err := eachServer(c, func(s int, _ string, conn driver.Conn) error {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM "+db+"."+schemas.LocalTable(table)).Scan(&n)
		out[s] = append(out[s], n)
		return err
	})
	if err != nil {
		t.Fatalf("count of %s: %v", table, err)
	}
	return out
}

// replicasAgree waits until both replicas of each shard hold the same
// readings, and returns each server's row count. Same means the same
// rows after FINAL (count and a sum of row hashes), not the same raw
// count: when ZooKeeper goes away while a replica commits an insert, the
// replica keeps the part it wrote, the insert fails with an unknown
// status, and the client's retry stores the rows again. ClickHouse
// checks such a part five minutes later (MAX_AGE_OF_LOCAL_PART_THAT_
// WASNT_ADDED_TO_ZOOKEEPER) and drops it if ZooKeeper never heard of it;
// until then that replica holds extra copies of rows both replicas hold.
func replicasAgree(t *testing.T, ctx context.Context, c *localch.Cluster, db string, within time.Duration) [][]uint64 {
	t.Helper()
	type digest struct{ rows, hash uint64 }
	var got [][]digest
	ok := waitFor(within, func() bool {
		got = make([][]digest, len(c.Servers))
		err := eachServer(c, func(s int, _ string, conn driver.Conn) error {
			var d digest
			err := conn.QueryRow(ctx, "SELECT count(), sum(cityHash64(meter_id, ts, kwh, interval_s, version)) FROM "+db+"."+schemas.LocalTable("readings")+" FINAL").Scan(&d.rows, &d.hash)
			got[s] = append(got[s], d)
			return err
		})
		if err != nil {
			t.Fatalf("readings after FINAL: %v", err)
		}
		for _, sh := range got {
			for _, d := range sh[1:] {
				if d != sh[0] {
					return false
				}
			}
		}
		return true
	})
	counts := shardCounts(t, ctx, c, db, "readings")
	if !ok {
		t.Errorf("the replicas of a shard disagree on readings: %v after FINAL (rows, hash sum), %v raw\n%s", got, counts, replicationState(ctx, c, db, "readings"))
	}
	return counts
}

// replicationState describes each server's replica of table and the
// oldest entries of its replication queue, for a failure message.
func replicationState(ctx context.Context, c *localch.Cluster, db, table string) string {
	var b strings.Builder
	local := schemas.LocalTable(table)
	err := eachServer(c, func(_ int, addr string, conn driver.Conn) error {
		var readonly, expired uint8
		var queue, inserts, merges uint32
		var delay uint64
		err := conn.QueryRow(ctx, "SELECT is_readonly, is_session_expired, queue_size, inserts_in_queue, merges_in_queue, absolute_delay FROM system.replicas WHERE database = ? AND table = ?", db, local).
			Scan(&readonly, &expired, &queue, &inserts, &merges, &delay)
		fmt.Fprintf(&b, "%s: readonly %d, session expired %d, queue %d (inserts %d, merges %d), delay %d s (%v)\n", addr, readonly, expired, queue, inserts, merges, delay, err)
		rows, err := conn.Query(ctx, "SELECT type, new_part_name, num_tries, last_exception, postpone_reason FROM system.replication_queue WHERE database = ? AND table = ? ORDER BY create_time LIMIT 5", db, local)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var typ, part, exc, postpone string
			var tries uint32
			if err := rows.Scan(&typ, &part, &tries, &exc, &postpone); err != nil {
				return err
			}
			fmt.Fprintf(&b, "  %s %s: %d tries; %q; %q\n", typ, part, tries, exc, postpone)
		}
		return rows.Err()
	})
	if err != nil {
		fmt.Fprintf(&b, "(%v)\n", err)
	}
	return b.String()
}

// TestClusterReplayMatchesSingleNode replays one simulated scenario into a
// single server and into a 2 × 2 cluster: the stored readings, every
// meter's energy, the table counts, the rejects and the alerts are the
// same; every shard holds a share of the readings, on both its replicas;
// and a second replay into the cluster changes none of it.
func TestClusterReplayMatchesSingleNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := sim.New(sim.Config{Seed: 11, Feeders: 10, Days: 5})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := sim.WriteDir(ctx, s, dir, sim.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	ch := testenv.ClickHouseAddr(t)
	c := testenv.Cluster(t)
	oneDB, clusterDB := testenv.DatabaseName(), testenv.DatabaseName()
	replay := func(db, out string, where ...string) []schemas.Alert {
		t.Helper()
		start := time.Now()
		args := append([]string{"replay", dir, "--clickhouse-database", db, "--alerts-out", out, "--log-level", "error"}, where...)
		if o, err := run(t, args...); err != nil {
			t.Fatalf("replay %v: %v\n%s", where, err, o)
		}
		t.Logf("replay into %s took %.1fs", where[1], time.Since(start).Seconds())
		as, err := sim.LoadAlerts(out)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	tmp := t.TempDir()
	oneAlerts := replay(oneDB, filepath.Join(tmp, "one.jsonl"), "--clickhouse", ch)
	clusterAlerts := replay(clusterDB, filepath.Join(tmp, "cluster.jsonl"), clusterArgs(c)...)

	one, err := store.Open(ctx, store.Config{Addr: ch, Database: oneDB}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	many := openCluster(t, ctx, c, clusterDB)
	type snapshot struct {
		totals  store.ReadingTotals
		meters  map[string]store.MeterTotal
		counts  map[string]uint64
		rejects map[string]uint64
		alerts  []alertKey
	}
	take := func(st *store.Store) snapshot {
		t.Helper()
		var sn snapshot
		var err error
		if sn.totals, err = st.ReadingTotals(ctx); err != nil {
			t.Fatal(err)
		}
		if sn.meters, err = st.MeterEnergy(ctx); err != nil {
			t.Fatal(err)
		}
		if sn.counts, err = st.TableCounts(ctx); err != nil {
			t.Fatal(err)
		}
		if sn.rejects, err = st.RejectReasons(ctx); err != nil {
			t.Fatal(err)
		}
		as, err := st.ListAlerts(ctx, store.AlertFilter{Limit: store.MaxAlertLimit})
		if err != nil {
			t.Fatal(err)
		}
		sn.alerts = keysOf(as, s.End())
		return sn
	}
	want := take(one)
	if want.totals.Rows < 10000 || len(want.alerts) < 5 {
		t.Fatalf("the scenario is too small to compare: %+v, %d alerts", want.totals, len(want.alerts))
	}
	if a, b := keysOf(oneAlerts, s.End()), keysOf(clusterAlerts, s.End()); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("replay into the cluster wrote %d alerts to --alerts-out, into one server %d", len(b), len(a))
		diff(t, a, b)
	}
	check := func(round string) {
		t.Helper()
		got := take(many)
		// Sums over shards add in another order: equal to the Wh.
		if got.totals.Rows != want.totals.Rows || got.totals.Meters != want.totals.Meters || fmt.Sprintf("%.3f", got.totals.KWh) != fmt.Sprintf("%.3f", want.totals.KWh) {
			t.Errorf("%s: cluster stores %+v, one server %+v", round, got.totals, want.totals)
		}
		bad := 0
		for id, w := range want.meters {
			if g := got.meters[id]; g.Rows != w.Rows || fmt.Sprintf("%.6f", g.KWh) != fmt.Sprintf("%.6f", w.KWh) {
				if bad++; bad <= 5 {
					t.Errorf("%s: meter %s: cluster %+v, one server %+v", round, id, g, w)
				}
			}
		}
		if len(got.meters) != len(want.meters) {
			t.Errorf("%s: cluster has %d meters, one server %d", round, len(got.meters), len(want.meters))
		}
		if fmt.Sprint(got.counts) != fmt.Sprint(want.counts) || fmt.Sprint(got.rejects) != fmt.Sprint(want.rejects) {
			t.Errorf("%s: cluster counts %v rejects %v; one server %v %v", round, got.counts, got.rejects, want.counts, want.rejects)
		}
		if fmt.Sprint(got.alerts) != fmt.Sprint(want.alerts) {
			t.Errorf("%s: cluster holds %d alerts, one server %d", round, len(got.alerts), len(want.alerts))
			diff(t, want.alerts, got.alerts)
		}
	}
	check("first replay")
	counts := replicasAgree(t, ctx, c, clusterDB, 30*time.Second)
	var stored uint64
	for s, sh := range counts {
		if sh[0] < want.totals.Rows/5 {
			t.Errorf("shard %d holds %d of %d readings: not a share", s+1, sh[0], want.totals.Rows)
		}
		stored += sh[0]
	}
	if raw, err := many.CountRows(ctx, "readings"); err != nil || raw != stored {
		t.Errorf("the shards hold %d readings, the Distributed table %d (%v)", stored, raw, err)
	}
	t.Logf("%d readings, %d alerts; readings per shard %v", want.totals.Rows, len(want.alerts), counts)

	again := replay(clusterDB, filepath.Join(tmp, "again.jsonl"), clusterArgs(c)...)
	if a, b := keysOf(clusterAlerts, s.End()), keysOf(again, s.End()); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("a second replay into the cluster raised %d alerts, the first %d", len(b), len(a))
	}
	check("second replay")
	if n, err := many.CountAlerts(ctx); err != nil || n != uint64(len(clusterAlerts)) {
		t.Errorf("after two replays the cluster holds %d alerts (%v), want %d", n, err, len(clusterAlerts))
	}
}

// TestClusterOutages runs serve on a 2 × 2 cluster while readings pour in,
// and breaks the cluster three times: the first replica of shard 1 (the
// one that takes the shard's reads and writes) is SIGKILLed and restarted,
// shard 2 is down for 30 s, then ZooKeeper is down for 30 s. Through the
// replica's loss ingest goes on; through the others serve reports not
// ready and commits no offset, since nothing can be stored. At the end
// every reading and every meter's energy is exact, and the restarted
// replica holds what its twin holds.
func TestClusterOutages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := testenv.NewCluster(t)
	db := testenv.DatabaseName()
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	l := load{meters: 200, steps: 900, seed: 7, pause: 5 * time.Second} // about 100 s of production
	prod := produceAsync(ctx, brokers, l)
	p := startServe(t, brokers, strings.Join(c.Addrs(), ","), db, "serve", "--clickhouse-cluster", c.Name)
	if !waitFor(time.Minute, func() bool { return p.status("/readyz") == http.StatusOK }) {
		t.Fatal("serve never became ready")
	}
	st := openCluster(t, ctx, c, db)
	rows := func() uint64 {
		tot, err := st.ReadingTotals(ctx)
		if err != nil {
			return 0
		}
		return tot.Rows
	}
	if !waitFor(time.Minute, func() bool { return rows() > 0 }) {
		t.Fatal("nothing stored before the first outage")
	}

	// A replica lost: its twin takes over its shard.
	victim := c.Servers[0][0]
	victim.Kill()
	before := rows()
	start := time.Now()
	if !waitFor(time.Minute, func() bool { return rows() >= before+10000 }) {
		t.Errorf("ingest stalled with one replica of shard 1 down (%d readings before, %d after a minute)", before, rows())
	}
	t.Logf("replica %s killed: %d more readings stored in %.1fs", victim.Addr, rows()-before, time.Since(start).Seconds())
	if err := victim.Restart(ctx); err != nil {
		t.Fatal(err)
	}

	outage := func(what string, stop func(), restart func() error) {
		t.Helper()
		stop()
		began := time.Now()
		if !waitFor(15*time.Second, func() bool { return p.status("/readyz") == http.StatusServiceUnavailable }) {
			t.Errorf("%s down: /readyz did not report not-ready", what)
		}
		// Commits of batches stored just before the stop may still land;
		// after that, nothing may be committed until the cluster is whole.
		time.Sleep(3 * time.Second)
		was, err := committed(ctx, brokers)
		if err != nil {
			t.Fatal(err)
		}
		for time.Since(began) < 30*time.Second {
			time.Sleep(2 * time.Second)
			now, err := committed(ctx, brokers)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(now) != fmt.Sprint(was) {
				t.Fatalf("%s down: offsets committed: %v -> %v", what, was, now)
			}
			if !p.alive() {
				t.Fatalf("serve exited with %s down", what)
			}
		}
		if err := restart(); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		if !waitFor(2*time.Minute, func() bool { return p.status("/readyz") == http.StatusOK }) {
			t.Fatalf("%s back: /readyz did not recover", what)
		}
		t.Logf("%s down %.0fs; ready again %.1fs after its return", what, back.Sub(began).Seconds(), time.Since(back).Seconds())
	}
	shard := c.Servers[1]
	outage("shard 2", func() {
		for _, srv := range shard {
			srv.Kill()
		}
	}, func() error {
		for _, srv := range shard {
			if err := srv.Restart(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	outage("ZooKeeper", c.ZK.Kill, func() error { return c.ZK.Restart(ctx) })

	res := <-prod
	if res.err != nil {
		t.Fatal(res.err)
	}
	caughtUp(t, ctx, brokers)
	sigterm(p)
	if err := <-p.done; err != nil {
		t.Errorf("serve exit: %v", err)
	}
	checkStored(t, ctx, st, res.want, l.steps)
	t.Logf("readings per server, shard by shard: %v", replicasAgree(t, ctx, c, db, time.Minute))
}
