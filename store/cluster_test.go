package store_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/rigwatch/rigwatch/internal/localch"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// serverConn opens a plain connection to one server of a cluster, to look
// at what that server alone holds.
func serverConn(t *testing.T, addr string) driver.Conn {
	t.Helper()
	c, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var (
	createRE  = regexp.MustCompile(`^CREATE TABLE (?:IF NOT EXISTS )?\w+\.(\w+) `)
	orderByRE = regexp.MustCompile(`ORDER BY \(?(\w+)`)
)

// singleNodeTables lists the tables of the single-node DDL and the first
// column each is ordered by.
func singleNodeTables(t *testing.T) map[string]string {
	t.Helper()
	migs, err := schemas.Migrations("x")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range migs {
		for _, s := range m.Statements {
			if m := createRE.FindStringSubmatch(s); m != nil {
				out[m[1]] = orderByRE.FindStringSubmatch(s)[1]
			}
		}
	}
	return out
}

func count(t *testing.T, ctx context.Context, c driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := c.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestClusterDDL migrates a database in cluster mode on a real cluster (2
// shards × 2 replicas, ZooKeeper) and checks every table of the single-node
// DDL, so that a table added there without a working cluster form fails
// here: on every server a replicated local table and a Distributed table
// of the contract's name; rows written twice through the Distributed table
// land on one shard per key, on both its replicas, and FINAL counts each
// key once.
func TestClusterDDL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := testenv.Cluster(t)
	start := time.Now()
	st := testenv.ClusterStore(t)
	t.Logf("cluster migration took %.1fs", time.Since(start).Seconds())
	db := st.Database()
	tables := singleNodeTables(t)
	if len(tables) < 10 {
		t.Fatalf("only %d tables in the single-node DDL: %v", len(tables), tables)
	}
	servers := map[string]driver.Conn{}
	for _, a := range c.Addrs() {
		servers[a] = serverConn(t, a)
	}
	tables["schema_migrations"] = ""
	for table, col := range tables {
		t.Run(table, func(t *testing.T) {
			for addr, sc := range servers {
				var local, dist string
				if err := sc.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", db, schemas.LocalTable(table)).Scan(&local); err != nil || !strings.HasPrefix(local, "Replicated") {
					t.Errorf("%s: %s_local is %q (%v), want a Replicated*MergeTree", addr, table, local, err)
				}
				if err := sc.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", db, table).Scan(&dist); err != nil || dist != "Distributed" {
					t.Errorf("%s: %s is %q (%v), want Distributed", addr, table, dist, err)
				}
			}
			if table == "schema_migrations" {
				return
			}
			var typ string
			if err := st.Conn().QueryRow(ctx, "SELECT type FROM system.columns WHERE database = ? AND table = ? AND name = ?", db, table, col).Scan(&typ); err != nil {
				t.Fatal(err)
			}
			// n keys, then each again in two other blocks (replicated
			// tables drop a block identical to one they have), varying the
			// first ORDER BY column.
			const n = 200
			for _, span := range [][2]int{{0, n}, {0, n / 2}, {n / 2, n}} {
				ins := fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT CAST(number + 1 AS %s) FROM system.numbers WHERE number >= %d LIMIT %d", db, table, col, typ, span[0], span[1]-span[0])
				if err := st.Conn().Exec(ctx, ins); err != nil {
					t.Fatalf("insert through the Distributed table: %v", err)
				}
			}
			total := count(t, ctx, st.Conn(), "SELECT count() FROM "+db+"."+table)
			if total != 2*n {
				t.Errorf("%d rows through the Distributed table, want %d", total, 2*n)
			}
			var engine string
			_ = st.Conn().QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", db, schemas.LocalTable(table)).Scan(&engine)
			if engine != "ReplicatedMergeTree" {
				if got := count(t, ctx, st.Conn(), "SELECT count() FROM "+db+"."+table+" FINAL"); got != n {
					t.Errorf("%d keys read FINAL, want %d: versions of a key were spread over shards", got, n)
				}
			}
			// Each shard's replicas hold the same rows, and the shards
			// together hold each row once.
			var sum uint64
			for s, sh := range c.Servers {
				var first uint64
				for r, srv := range sh {
					q := "SELECT count() FROM " + db + "." + schemas.LocalTable(table)
					var got uint64
					waitFor(t, 20*time.Second, func() bool { got = count(t, ctx, servers[srv.Addr], q); return r == 0 || got == first })
					if r == 0 {
						first = got
					} else if got != first {
						t.Errorf("shard %d: replica %d holds %d rows, replica 1 %d", s+1, r+1, got, first)
					}
				}
				sum += first
			}
			if sum != total {
				t.Errorf("the shards hold %d rows, the Distributed table reads %d", sum, total)
			}
		})
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool) bool {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// TestClusterLaterMigrations runs the statements a later migration may hold
// (a table, a materialized view, a column added to readings, a view, a
// table dropped)
// in their cluster form on the real cluster, so the forms schemas makes for
// them are known to work on ClickHouse 18.16.
func TestClusterLaterMigrations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := testenv.Cluster(t)
	st := testenv.ClusterStore(t)
	db := st.Database()
	sql := `-- cluster: sharding key cityHash64(meter_id)
CREATE TABLE IF NOT EXISTS {db}.hourly (meter_id String, hour DateTime, kwh Float64) ENGINE = SummingMergeTree(kwh) ORDER BY (meter_id, hour);
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.hourly_mv TO {db}.hourly AS SELECT meter_id, toStartOfHour(ts) AS hour, kwh FROM {db}.readings;
ALTER TABLE {db}.readings ADD COLUMN quality UInt8 DEFAULT 1;
CREATE VIEW IF NOT EXISTS {db}.hourly_view AS SELECT meter_id, sum(kwh) AS kwh FROM {db}.hourly GROUP BY meter_id;
`
	stmts, err := schemas.ClusterStatements(db, schemas.Cluster{Name: c.Name, PathSuffix: "later"}, sql)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if err := st.Conn().Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	var rs []schemas.Reading
	for m := 0; m < 50; m++ {
		for k := 1; k <= 8; k++ {
			rs = append(rs, schemas.Reading{MeterID: fmt.Sprintf("M%02d", m), TS: t0.Add(time.Duration(k) * 15 * time.Minute), KWh: 1, IntervalS: 900, Meta: schemas.Meta{Version: 1}})
		}
	}
	if err := st.WriteBatch(ctx, &schemas.Batch{Readings: rs}); err != nil {
		t.Fatal(err)
	}
	var meters, n uint64
	var kwh float64
	if err := st.Conn().QueryRow(ctx, "SELECT count(), sum(kwh) FROM "+db+".hourly_view").Scan(&meters, &kwh); err != nil {
		t.Fatal(err)
	}
	if meters != 50 || kwh != 400 {
		t.Errorf("the view over the materialized view reads %d meters, %.0f kWh; want 50, 400", meters, kwh)
	}
	if err := st.Conn().QueryRow(ctx, "SELECT sum(quality) FROM "+db+".readings").Scan(&n); err != nil || n != 400 {
		t.Errorf("the added column reads %d (%v) through the Distributed table, want 400", n, err)
	}
	drop, err := schemas.ClusterStatements(db, schemas.Cluster{Name: c.Name}, "DROP TABLE IF EXISTS {db}.hourly_view;")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range drop {
		if err := st.Conn().Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestClusterStoreMatchesSingleNode writes the same records to one server
// and to the cluster and compares what the store's queries answer: FINAL,
// argMax and GLOBAL IN read the same through Distributed tables.
func TestClusterStoreMatchesSingleNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	one, many := testenv.Store(t), testenv.ClusterStore(t)
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	var ver uint64
	next := func() schemas.Meta { ver++; return schemas.Meta{Version: ver} }
	b := &schemas.Batch{}
	for m := 0; m < 40; m++ {
		id := fmt.Sprintf("M%03d", m)
		if m%10 != 0 { // every tenth meter is unknown to the registry
			b.Meters = append(b.Meters, schemas.Meter{MeterID: id, FeederID: fmt.Sprintf("F%d", m%4), Role: schemas.RoleCustomer, Class: schemas.ClassResidential, SiteID: "", Oblast: "Abai", UpdatedAt: t0, Meta: next()})
		}
		for k := 1; k <= 24; k++ {
			b.Readings = append(b.Readings, schemas.Reading{MeterID: id, TS: t0.Add(time.Duration(k) * 15 * time.Minute), KWh: float64(m*k%17) / 4, IntervalS: 900, Meta: next()})
		}
	}
	b.Meters = append(b.Meters, schemas.Meter{MeterID: "SITE-M", FeederID: "F0", Role: schemas.RoleSite, Class: schemas.ClassMining, SiteID: "S1", UpdatedAt: t0, Meta: next()})
	b.Licenses = []schemas.License{{LicenseID: "L1", OperatorID: "OP1", Status: "active", ValidFrom: t0.AddDate(0, -1, 0), ValidTo: t0.AddDate(1, 0, 0), UpdatedAt: t0, Meta: next()}}
	for r := 0; r < 30; r++ {
		b.Rigs = append(b.Rigs, schemas.Rig{RigID: fmt.Sprintf("R%02d", r), Serial: fmt.Sprintf("SN%02d", r), RatedPowerW: 3250, OperatorID: "OP1", LicenseID: "L1", SiteID: "S1", Status: schemas.RigActive, UpdatedAt: t0, Meta: next()})
	}
	b.Purchases = []schemas.Purchase{{TxID: "T1", OperatorID: "OP1", SiteID: "S1", MWh: 1, TS: t0.Add(time.Hour), Meta: next()}}
	// Corrections and a redelivery: later versions of some keys.
	again := &schemas.Batch{Readings: append([]schemas.Reading(nil), b.Readings[:100]...), Rigs: append([]schemas.Rig(nil), b.Rigs[:5]...)}
	for i := range again.Readings {
		again.Readings[i].KWh += 1
		again.Readings[i].Meta = next()
	}
	for i := range again.Rigs {
		again.Rigs[i].Status, again.Rigs[i].UpdatedAt, again.Rigs[i].Meta = schemas.RigDecommissioned, t0.Add(2*time.Hour), next()
	}
	// The detector's feeder hours, some written again as a late reading
	// moves them.
	var hours, moved []schemas.FeederHour
	for f := 0; f < 4; f++ {
		for h := 0; h < 6; h++ {
			fh := schemas.FeederHour{FeederID: fmt.Sprintf("F%d", f), Hour: t0.Add(time.Duration(h) * time.Hour), HeadKWh: float64(10*f + h), MetersKWh: float64(9*f + h), Meters: 10, Complete: h%2 == 0}
			hours = append(hours, fh)
			if h%3 == 1 {
				fh.MetersKWh, fh.Complete, fh.Meters = fh.MetersKWh+1, true, 11
				moved = append(moved, fh)
			}
		}
	}
	for _, st := range []*store.Store{one, many} {
		for _, batch := range []*schemas.Batch{b, again, b} {
			if err := st.WriteBatch(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		for _, hs := range [][]schemas.FeederHour{hours, moved} {
			if err := st.WriteHours(ctx, hs, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	type probe struct {
		name string
		run  func(st *store.Store) (any, error)
	}
	ids := []string{"M001", "M013", "M027", "M039"}
	probes := []probe{
		{"ReadingTotals", func(st *store.Store) (any, error) { return st.ReadingTotals(ctx) }},
		{"MeterEnergy", func(st *store.Store) (any, error) { return st.MeterEnergy(ctx) }},
		{"TableCounts", func(st *store.Store) (any, error) { return st.TableCounts(ctx) }},
		{"MeterTotals", func(st *store.Store) (any, error) { return st.MeterTotals(ctx, ids, t0, t0.Add(3*time.Hour)) }},
		{"MeterHourly", func(st *store.Store) (any, error) { return st.MeterHourly(ctx, ids, t0, t0.Add(6*time.Hour)) }},
		{"UnknownMeters", func(st *store.Store) (any, error) { return st.UnknownMeters(ctx, 0) }},
		{"PurchasesBetween", func(st *store.Store) (any, error) { return st.PurchasesBetween(ctx, t0, t0.Add(24*time.Hour)) }},
		{"Watermark", func(st *store.Store) (any, error) { return st.Watermark(ctx, t0.Add(6*time.Hour)) }},
		{"LatestReadingTime", func(st *store.Store) (any, error) { return st.LatestReadingTime(ctx) }},
		{"FeederTotals", func(st *store.Store) (any, error) { return st.FeederTotals(ctx, t0, t0.Add(6*time.Hour)) }},
		{"FeederHours", func(st *store.Store) (any, error) { return st.FeederHours(ctx, nil, t0, t0.Add(6*time.Hour)) }},
		{"MeterReadings", func(st *store.Store) (any, error) {
			var out []string
			err := st.MeterReadings(ctx, t0, t0.Add(6*time.Hour), func(id string, ts []time.Time, kwh []float64, _ []int32) error {
				out = append(out, fmt.Sprint(id, len(ts), kwh))
				return nil
			})
			return out, err
		}},
		{"LoadRegistryScope(site)", func(st *store.Store) (any, error) { return loadStats(ctx, st, store.SiteScope("S1")) }},
		{"LoadRegistryScope(rig)", func(st *store.Store) (any, error) { return loadStats(ctx, st, store.RigScope("SN03")) }},
		{"LoadRegistryScope(operator)", func(st *store.Store) (any, error) { return loadStats(ctx, st, store.OperatorScope("OP1")) }},
	}
	compare := func(probes []probe) {
		t.Helper()
		for _, p := range probes {
			a, errA := p.run(one)
			b, errB := p.run(many)
			if errA != nil || errB != nil {
				t.Errorf("%s: one server %v, cluster %v", p.name, errA, errB)
				continue
			}
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Errorf("%s differs:\n one server %v\n cluster    %v", p.name, a, b)
			}
		}
	}
	compare(probes)

	// Alerts, their status history, tokens and the audit trail: the
	// read-modify-write paths of the API.
	for _, st := range []*store.Store{one, many} {
		if _, err := st.UpsertAlerts(ctx, []schemas.Alert{testAlert("a1", t0, 3), testAlert("a2", t0, 5)}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.SetAlertStatus(ctx, "a1", schemas.StatusAcknowledged, "seen", "tester"); err != nil {
			t.Fatal(err)
		}
		if opened, err := st.UpsertAlerts(ctx, []schemas.Alert{testAlert("a1", t0, 4)}); err != nil || len(opened) != 0 {
			t.Fatalf("a changed finding reopened: %v %v", opened, err)
		}
		if _, err := st.CloseAlerts(ctx, []string{"a2"}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.FoldAlertState(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.CreateToken(ctx, "ops", store.RoleOperator); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RevokeToken(ctx, "ops"); err != nil {
			t.Fatal(err)
		}
		if err := st.WriteAudit(ctx, store.AuditEntry{Who: "tester", Role: "admin", Action: "probe", Params: "{}", Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	after := []probe{
		{"ListAlerts", func(st *store.Store) (any, error) {
			as, err := st.ListAlerts(ctx, store.AlertFilter{Order: "score"})
			var out []string
			for _, a := range as {
				out = append(out, fmt.Sprint(a.AlertID, a.Status, a.Note, *a.ExcessKWh, a.Closed))
			}
			return out, err
		}},
		{"FoldAlertState", func(st *store.Store) (any, error) {
			n, err := st.FoldAlertState(ctx) // folded above: nothing left
			return n, err
		}},
		{"alerts table", func(st *store.Store) (any, error) {
			var status, note string
			err := st.Conn().QueryRow(ctx, "SELECT status, note FROM "+st.Database()+".alerts FINAL WHERE alert_id = 'a1'").Scan(&status, &note)
			return status + " " + note, err
		}},
		{"AlertEvents", func(st *store.Store) (any, error) {
			es, err := st.AlertEvents(ctx, "a1")
			var out []string
			for _, e := range es {
				out = append(out, e.From+">"+e.To+" "+e.Who)
			}
			return out, err
		}},
		{"CountAlerts", func(st *store.Store) (any, error) { return st.CountAlerts(ctx) }},
		{"ListTokens", func(st *store.Store) (any, error) {
			ts, err := st.ListTokens(ctx)
			var out []string
			for _, tk := range ts {
				out = append(out, fmt.Sprint(tk.Name, tk.Role, tk.Revoked))
			}
			return out, err
		}},
		{"ListAudit", func(st *store.Store) (any, error) {
			es, err := st.ListAudit(ctx, store.AuditFilter{Who: "tester"})
			var out []string
			for _, e := range es {
				out = append(out, e.Action)
			}
			return out, err
		}},
	}
	compare(after)
}

// loadStats loads the part of the registry scope names and describes it.
func loadStats(ctx context.Context, st *store.Store, scope store.Scope) (string, error) {
	ix, err := registry.New(registry.Config{}, nil)
	if err != nil {
		return "", err
	}
	if err := st.LoadRegistryScope(ctx, ix, scope); err != nil {
		return "", err
	}
	t := time.Date(2025, 10, 1, 1, 0, 0, 0, time.UTC)
	return fmt.Sprintf("%+v %v %v", ix.Stats(t.Add(3*time.Hour)), ix.SiteCapacityW("S1", t), ix.SiteCapacityW("S1", t.Add(3*time.Hour))), nil
}

// TestClusterNeedsInOrder: cluster mode refuses a user whose reads of a
// shard may go to any replica, and says what to set.
func TestClusterNeedsInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := localch.StartCluster(ctx, t.TempDir(), localch.ClusterConfig{Shards: 1, Replicas: 1, LoadBalancing: "random"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	_, err = store.Open(ctx, testenv.ClusterConfig(c), nil)
	if err == nil || !strings.Contains(err.Error(), "load_balancing = 'in_order'") || !strings.Contains(err.Error(), "docs/cluster.md") {
		t.Fatalf("Open with load_balancing random: %v", err)
	}
	cfg := testenv.ClusterConfig(c)
	cfg.Cluster = "nosuch"
	if _, err := store.Open(ctx, cfg, nil); err == nil || !strings.Contains(err.Error(), "knows no cluster") {
		t.Fatalf("Open of an unknown cluster: %v", err)
	}
}
