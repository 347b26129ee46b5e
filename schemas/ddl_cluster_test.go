package schemas

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestClusterMigrationsGolden pins the cluster form of the embedded DDL:
// a change to a table shows in review as a change to its cluster form too.
// Refresh with go test ./schemas -run Golden -update. That the form works
// on a real cluster is store's TestClusterDDL.
func TestClusterMigrationsGolden(t *testing.T) {
	migs, err := ClusterMigrations("rigwatch", Cluster{Name: "rigwatch", PathSuffix: "SUFFIX"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("-- The cluster form of schemas/ddl/ (database rigwatch, cluster rigwatch,\n-- path suffix SUFFIX). Generated: go test ./schemas -run Golden -update\n")
	for _, m := range migs {
		b.WriteString("\n-- " + m.Name + "\n")
		for _, s := range m.Statements {
			b.WriteString(s + ";\n")
		}
	}
	path := filepath.Join("testdata", "cluster.golden.sql")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("the cluster form of the DDL changed; review it and run go test ./schemas -run Golden -update\n%s", b.String())
	}
}

// TestClusterFormOfEveryTable checks the embedded DDL table by table: each
// single-node table has a local replicated table and a Distributed table of
// its name, with the same versions in the same order.
func TestClusterFormOfEveryTable(t *testing.T) {
	single, err := Migrations("db1")
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := ClusterMigrations("db1", Cluster{Name: "c1", PathSuffix: "x1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(single) != len(cluster) {
		t.Fatalf("%d single-node migrations, %d in cluster form", len(single), len(cluster))
	}
	for i := range single {
		if single[i].Version != cluster[i].Version || single[i].Name != cluster[i].Name {
			t.Errorf("migration %d: %s vs %s", i, single[i].Name, cluster[i].Name)
		}
		all := strings.Join(cluster[i].Statements, "\n")
		for _, s := range single[i].Statements {
			f := strings.Fields(s)
			if len(f) < 6 || f[0] != "CREATE" || f[1] != "TABLE" {
				continue
			}
			name := strings.TrimPrefix(f[5], "db1.")
			for _, want := range []string{
				"CREATE TABLE IF NOT EXISTS db1." + name + "_local ON CLUSTER c1 (",
				"MergeTree('/clickhouse/tables/{shard}/db1/" + name + "_x1', '{replica}'",
				"CREATE TABLE IF NOT EXISTS db1." + name + " ON CLUSTER c1 AS db1." + name + "_local ENGINE = Distributed(c1, db1, " + name + "_local, ",
			} {
				if !strings.Contains(all, want) {
					t.Errorf("table %s: no %q in its cluster form", name, want)
				}
			}
		}
	}
}

func TestClusterStatements(t *testing.T) {
	c := Cluster{Name: "c1"}
	base := "-- cluster: sharding key cityHash64(k)\nCREATE TABLE IF NOT EXISTS {db}.t (k String, v UInt64, n UInt8) ENGINE = ReplacingMergeTree(v) ORDER BY k;\n"
	for _, tc := range []struct {
		name, sql string
		want      []string // substrings of the joined output, in order
		err       string
	}{
		{name: "replacing", sql: base, want: []string{
			"CREATE TABLE IF NOT EXISTS d.t_local ON CLUSTER c1 (k String, v UInt64, n UInt8)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/d/t', '{replica}', v)\nORDER BY k",
			"CREATE TABLE IF NOT EXISTS d.t ON CLUSTER c1 AS d.t_local ENGINE = Distributed(c1, d, t_local, cityHash64(k))"}},
		{name: "plain merge tree may shard by anything", sql: "-- cluster: sharding key rand()\nCREATE TABLE {db}.log (ts DateTime, m String) ENGINE = MergeTree ORDER BY ts;",
			want: []string{"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/d/log', '{replica}')\nORDER BY ts", "Distributed(c1, d, log_local, rand())"}},
		{name: "missing sharding key", sql: "CREATE TABLE {db}.u (k String) ENGINE = MergeTree ORDER BY k;", err: "no \"-- cluster: sharding key EXPR\" line"},
		{name: "key outside ORDER BY", sql: "-- cluster: sharding key cityHash64(n)\nCREATE TABLE {db}.u (k String, n String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY (k, toStartOfHour(ts));", err: "uses n, which is not in ORDER BY"},
		{name: "key inside a composite ORDER BY", sql: "-- cluster: sharding key cityHash64(k, ts)\nCREATE TABLE {db}.u (k String, ts DateTime, v UInt64) ENGINE = ReplacingMergeTree(v) PARTITION BY toYYYYMM(ts) ORDER BY (k, toStartOfHour(ts));",
			want: []string{"Distributed(c1, d, u_local, cityHash64(k, ts))"}},
		{name: "unknown directive", sql: "-- cluster: replicate everywhere\nCREATE TABLE {db}.u (k String) ENGINE = MergeTree ORDER BY k;", err: "unknown directive"},
		{name: "add column", sql: base + "ALTER TABLE {db}.t ADD COLUMN x String, MODIFY COLUMN n UInt16;", want: []string{
			"ALTER TABLE d.t_local ON CLUSTER c1 ADD COLUMN x String, MODIFY COLUMN n UInt16",
			"DROP TABLE IF EXISTS d.t ON CLUSTER c1",
			"CREATE TABLE d.t ON CLUSTER c1 AS d.t_local ENGINE = Distributed(c1, d, t_local, cityHash64(k))"}},
		{name: "alter without a cluster form", sql: base + "ALTER TABLE {db}.t UPDATE n = 1 WHERE 1;", err: "no cluster form"},
		{name: "alter of an unknown table", sql: "ALTER TABLE {db}.nope ADD COLUMN x String;", err: "not a table of the migrations"},
		{name: "drop", sql: base + "DROP TABLE IF EXISTS {db}.t;", want: []string{"DROP TABLE IF EXISTS d.t ON CLUSTER c1", "DROP TABLE IF EXISTS d.t_local ON CLUSTER c1"}},
		{name: "view reads the Distributed tables", sql: base + "CREATE VIEW IF NOT EXISTS {db}.v AS SELECT k FROM {db}.t FINAL;", want: []string{"CREATE VIEW IF NOT EXISTS d.v ON CLUSTER c1 AS SELECT k FROM d.t FINAL"}},
		{name: "materialized view works on local tables", sql: base + strings.ReplaceAll(base, ".t ", ".agg ") + "CREATE MATERIALIZED VIEW {db}.mv TO {db}.agg AS SELECT k, v, n FROM {db}.t;",
			want: []string{"CREATE MATERIALIZED VIEW d.mv ON CLUSTER c1 TO d.agg_local AS SELECT k, v, n FROM d.t_local"}},
		{name: "insert has no cluster form", sql: base + "INSERT INTO {db}.t SELECT 'a', 1, 1;", err: "no cluster form"},
		{name: "already replicated", sql: "-- cluster: sharding key k\nCREATE TABLE {db}.u (k String) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY k;", err: "must not be replicated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ClusterStatements("d", c, tc.sql)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(got, "\n")
			at := 0
			for _, w := range tc.want {
				i := strings.Index(all[at:], w)
				if i < 0 {
					t.Fatalf("no %q (in order) in\n%s", w, all)
				}
				at += i + len(w)
			}
		})
	}
	if _, err := ClusterStatements("d", Cluster{Name: "bad name"}, base); err == nil {
		t.Error("a cluster name with a space was accepted")
	}
	if _, err := ClusterStatements("d", Cluster{Name: "c", PathSuffix: "a/b"}, base); err == nil {
		t.Error("a path suffix with a slash was accepted")
	}
	_, err := ClusterStatements("d", c, "SELECT 1;")
	if !errors.Is(err, errNoClusterForm) {
		t.Errorf("SELECT: %v, want errNoClusterForm", err)
	}
}

func TestSingleNodeStatementsDropDirectives(t *testing.T) {
	got, err := SingleNodeStatements("d", "-- cluster: sharding key k\nCREATE TABLE {db}.t (k String) ENGINE = MergeTree ORDER BY k;")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || strings.Contains(got[0], "--") || !strings.HasPrefix(got[0], "CREATE TABLE d.t") {
		t.Errorf("got %q", got)
	}
}
