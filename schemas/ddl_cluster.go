package schemas

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Cluster says which ClickHouse cluster the cluster form of the DDL is for.
//
// In the cluster form every table T of the single-node DDL becomes a local
// table T_local on every server, a Replicated*MergeTree whose replicas are
// the servers of one shard, and a Distributed table named T over them, so
// that users and rigwatch query the same names in either mode. Both are
// created ON CLUSTER, through the cluster's ZooKeeper (or ClickHouse
// Keeper).
//
// Each CREATE TABLE of the single-node DDL carries the line
//
//	-- cluster: sharding key EXPR
//
// just before it: the Distributed table sends each row to the shard EXPR
// picks. For every engine that collapses rows by key (ReplacingMergeTree and
// the like) EXPR may use only ORDER BY columns, so that all versions of one
// key land on one shard and FINAL and argMax, which work per shard, stay
// exact. A CREATE TABLE without it, or a statement with no cluster form, is
// an error: a new table cannot reach a cluster unsharded by accident.
type Cluster struct {
	// Name is the cluster's name in the servers' remote_servers; a plain
	// identifier.
	Name string
	// PathSuffix ends the ZooKeeper path of every replicated table created
	// (letters, digits and underscores), so that creating a table again
	// never meets what an earlier table of the same name left in ZooKeeper
	// (ClickHouse refuses that with code 253). Empty: none.
	PathSuffix string
}

var suffixRE = regexp.MustCompile(`^[A-Za-z0-9_]{0,32}$`)

// Validate checks the cluster name and the path suffix.
func (c Cluster) Validate() error {
	if !ValidIdent(c.Name) {
		return fmt.Errorf("cluster name %q is not a plain identifier", c.Name)
	}
	if !suffixRE.MatchString(c.PathSuffix) {
		return fmt.Errorf("ZooKeeper path suffix %q: want up to 32 letters, digits or underscores", c.PathSuffix)
	}
	return nil
}

// LocalTable returns the name of the local table behind the Distributed
// table name.
func LocalTable(name string) string { return name + "_local" }

// ReplicaPath returns the ZooKeeper path of a local table, with ClickHouse's
// {shard} macro left for each server to fill in.
func (c Cluster) ReplicaPath(db, table string) string {
	p := "/clickhouse/tables/{shard}/" + db + "/" + table
	if c.PathSuffix != "" {
		p += "_" + c.PathSuffix
	}
	return p
}

// ClusterMigrations returns Migrations(db) in cluster form for c: the same
// versions and names, each statement replaced by its cluster form.
func ClusterMigrations(db string, c Cluster) ([]Migration, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	files, err := migrationFiles(db)
	if err != nil {
		return nil, err
	}
	tr := newClusterForm(db, c)
	out := make([]Migration, len(files))
	for i, f := range files {
		out[i] = Migration{Version: f.version, Name: f.name}
		for _, st := range f.statements {
			stmts, err := tr.statement(st)
			if err != nil {
				return nil, fmt.Errorf("migration %s: %w", f.name, err)
			}
			out[i].Statements = append(out[i].Statements, stmts...)
		}
	}
	return out, nil
}

// ClusterStatements returns the cluster form for c of sql, single-node DDL
// in the form of the embedded files (statements ending in ";", each CREATE
// TABLE after its "-- cluster:" line), with {db} replaced by db, after the
// embedded migrations (whose tables it may name). It serves tables rigwatch
// creates outside the migrations, such as the record of migrations itself.
func ClusterStatements(db string, c Cluster, sql string) ([]string, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !ValidIdent(db) {
		return nil, fmt.Errorf("database name %q is not a plain identifier", db)
	}
	// Later statements may name the tables of the embedded migrations.
	tr := newClusterForm(db, c)
	files, err := migrationFiles(db)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		for _, st := range f.statements {
			if _, err := tr.statement(st); err != nil {
				return nil, err
			}
		}
	}
	var out []string
	for _, st := range splitSQL(strings.ReplaceAll(sql, "{db}", db)) {
		stmts, err := tr.statement(st)
		if err != nil {
			return nil, err
		}
		out = append(out, stmts...)
	}
	return out, nil
}

// SingleNodeStatements returns the statements of sql, in the same form as
// ClusterStatements takes, for one server.
func SingleNodeStatements(db, sql string) ([]string, error) {
	if !ValidIdent(db) {
		return nil, fmt.Errorf("database name %q is not a plain identifier", db)
	}
	var out []string
	for _, st := range splitSQL(strings.ReplaceAll(sql, "{db}", db)) {
		out = append(out, st.sql)
	}
	return out, nil
}

// clusterForm rewrites single-node statements in order, remembering each
// table's sharding key for later statements (an ALTER recreates the
// Distributed table).
type clusterForm struct {
	db, on string
	c      Cluster
	keys   map[string]string // table -> sharding key
}

func newClusterForm(db string, c Cluster) *clusterForm {
	return &clusterForm{db: db, on: " ON CLUSTER " + c.Name, c: c, keys: map[string]string{}}
}

var (
	createTableRE = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\.(\w+)\s*(\(.*\))\s*ENGINE\s*=\s*(\w*)MergeTree\b\s*(.*)$`)
	alterRE       = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+(\w+)\.(\w+)\s+(.*)$`)
	columnOpRE    = regexp.MustCompile(`(?i)^\s*(ADD|DROP|MODIFY|COMMENT)\s+COLUMN\b`)
	dropTableRE   = regexp.MustCompile(`(?is)^DROP\s+TABLE\s+(IF\s+EXISTS\s+)?(\w+)\.(\w+)\s*$`)
	createViewRE  = regexp.MustCompile(`(?is)^CREATE\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\.(\w+)\s+(AS\s+SELECT\b.*)$`)
	createMVRE    = regexp.MustCompile(`(?is)^CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\.(\w+)\s+TO\s+(\w+)\.(\w+)\s+(AS\s+SELECT\b.*)$`)
	shardingRE    = regexp.MustCompile(`(?i)^sharding\s+key\s+(.+)$`)
	orderByRE     = regexp.MustCompile(`(?i)\bORDER\s+BY\b`)
	identTokRE    = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
)

// errNoClusterForm marks a statement the cluster form does not know.
var errNoClusterForm = errors.New("no cluster form")

func (f *clusterForm) statement(st statement) ([]string, error) {
	sql := st.sql
	if m := createTableRE.FindStringSubmatch(sql); m != nil {
		return f.createTable(st, m)
	}
	if len(st.directives) > 0 {
		return nil, fmt.Errorf("%q: a %s line belongs before a CREATE TABLE", firstLineOf(sql), directivePrefix)
	}
	if m := alterRE.FindStringSubmatch(sql); m != nil && m[1] == f.db {
		return f.alter(sql, m[2], m[3])
	}
	if m := dropTableRE.FindStringSubmatch(sql); m != nil && m[2] == f.db {
		delete(f.keys, m[3])
		return []string{
			"DROP TABLE IF EXISTS " + f.db + "." + m[3] + f.on,
			"DROP TABLE IF EXISTS " + f.db + "." + LocalTable(m[3]) + f.on,
		}, nil
	}
	if m := createViewRE.FindStringSubmatch(sql); m != nil && m[2] == f.db {
		// A view over the Distributed tables reads the whole cluster.
		return []string{"CREATE VIEW " + m[1] + f.db + "." + m[3] + f.on + " " + m[4]}, nil
	}
	if m := createMVRE.FindStringSubmatch(sql); m != nil && m[2] == f.db && m[4] == f.db {
		// A materialized view fires on inserts into the local table of
		// the server that receives them and writes to the local target
		// there: replicas copy the result, never compute it twice.
		if _, ok := f.keys[m[5]]; !ok {
			return nil, fmt.Errorf("%q: materialized view into %s, which is not a table of the migrations", firstLineOf(sql), m[5])
		}
		sel := regexp.MustCompile(`\b`+regexp.QuoteMeta(f.db)+`\.(\w+)\b`).ReplaceAllStringFunc(m[6], func(ref string) string {
			if _, ok := f.keys[strings.TrimPrefix(ref, f.db+".")]; ok {
				return LocalTable(ref)
			}
			return ref
		})
		return []string{"CREATE MATERIALIZED VIEW " + m[1] + f.db + "." + m[3] + f.on + " TO " + f.db + "." + LocalTable(m[5]) + " " + sel}, nil
	}
	return nil, fmt.Errorf("%q: %w (schemas/ddl_cluster.go knows CREATE TABLE of a *MergeTree, ALTER TABLE ... COLUMN, DROP TABLE, CREATE VIEW and CREATE MATERIALIZED VIEW ... TO)", firstLineOf(sql), errNoClusterForm)
}

func (f *clusterForm) createTable(st statement, m []string) ([]string, error) {
	ifNot, db, name, cols, flavour, rest := m[1], m[2], m[3], m[4], m[5], m[6]
	if db != f.db {
		return nil, fmt.Errorf("table %s.%s is outside database %s", db, name, f.db)
	}
	if strings.HasPrefix(strings.ToLower(flavour), "replicated") {
		return nil, fmt.Errorf("table %s: the single-node DDL must not be replicated already", name)
	}
	var key string
	for _, d := range st.directives {
		if k := shardingRE.FindStringSubmatch(d); k != nil {
			key = strings.TrimSpace(k[1])
		} else {
			return nil, fmt.Errorf("table %s: unknown directive %q (want %q)", name, d, directivePrefix+" sharding key EXPR")
		}
	}
	if key == "" {
		return nil, fmt.Errorf("table %s: no %q line before its CREATE TABLE: say how its rows are spread over shards", name, directivePrefix+" sharding key EXPR")
	}
	var args string
	if strings.HasPrefix(rest, "(") {
		end := matchParen(rest)
		if end < 0 {
			return nil, fmt.Errorf("table %s: unbalanced engine arguments", name)
		}
		args, rest = strings.TrimSpace(rest[1:end]), strings.TrimSpace(rest[end+1:])
	}
	if flavour != "" {
		// Every flavour but plain MergeTree merges rows of one sorting
		// key: they must all be on one shard.
		orderCols, err := orderByColumns(rest)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", name, err)
		}
		for _, id := range exprIdents(key) {
			if !orderCols[id] {
				return nil, fmt.Errorf("table %s: sharding key %s uses %s, which is not in ORDER BY: versions of one key would be spread over shards and FINAL would count them twice", name, key, id)
			}
		}
	}
	engineArgs := "'" + f.c.ReplicaPath(f.db, name) + "', '{replica}'"
	if args != "" {
		engineArgs += ", " + args
	}
	local := LocalTable(name)
	f.keys[name] = key
	return []string{
		"CREATE TABLE " + ifNot + f.db + "." + local + f.on + " " + cols + "\nENGINE = Replicated" + flavour + "MergeTree(" + engineArgs + ")\n" + rest,
		f.distributed(ifNot, name),
	}, nil
}

// distributed creates the Distributed table name over its local table,
// with the columns of the local table on each server.
func (f *clusterForm) distributed(ifNot, name string) string {
	local := LocalTable(name)
	return "CREATE TABLE " + ifNot + f.db + "." + name + f.on + " AS " + f.db + "." + local +
		" ENGINE = Distributed(" + f.c.Name + ", " + f.db + ", " + local + ", " + f.keys[name] + ")"
}

func (f *clusterForm) alter(sql, name, ops string) ([]string, error) {
	if _, ok := f.keys[name]; !ok {
		return nil, fmt.Errorf("%q: ALTER of %s, which is not a table of the migrations", firstLineOf(sql), name)
	}
	for _, op := range splitTopLevel(ops) {
		if !columnOpRE.MatchString(op) {
			return nil, fmt.Errorf("%q: %w for ALTER %s", firstLineOf(sql), errNoClusterForm, strings.TrimSpace(op))
		}
	}
	// ClickHouse 18.16 refuses ALTER ... ON CLUSTER of a Distributed table
	// over replicated shards (code 371); it holds no data, so it is made
	// again with the local table's new columns.
	return []string{
		"ALTER TABLE " + f.db + "." + LocalTable(name) + f.on + " " + ops,
		"DROP TABLE IF EXISTS " + f.db + "." + name + f.on,
		f.distributed("", name),
	}, nil
}

// orderByColumns returns the identifiers of the ORDER BY clause in clauses
// (the text after the engine).
func orderByColumns(clauses string) (map[string]bool, error) {
	loc := orderByRE.FindStringIndex(clauses)
	if loc == nil {
		return nil, errors.New("no ORDER BY")
	}
	expr := strings.TrimSpace(clauses[loc[1]:])
	if strings.HasPrefix(expr, "(") {
		end := matchParen(expr)
		if end < 0 {
			return nil, errors.New("unbalanced ORDER BY")
		}
		expr = expr[:end+1]
	} else if i := strings.IndexAny(expr, " \n\t"); i >= 0 {
		expr = expr[:i]
	}
	out := map[string]bool{}
	for _, id := range exprIdents(expr) {
		out[id] = true
	}
	return out, nil
}

// exprIdents returns the column names in a SQL expression: identifiers not
// followed by "(" (those are functions).
func exprIdents(expr string) []string {
	var out []string
	for _, loc := range identTokRE.FindAllStringIndex(expr, -1) {
		rest := strings.TrimLeft(expr[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") {
			continue
		}
		if loc[0] > 0 && (expr[loc[0]-1] == '\'' || (expr[loc[0]-1] >= '0' && expr[loc[0]-1] <= '9')) {
			continue
		}
		out = append(out, expr[loc[0]:loc[1]])
	}
	return out
}

// scanSQL calls fn with each byte of s outside quotes and the depth of
// parentheses after it, until fn returns false.
func scanSQL(s string, fn func(i int, c byte, depth int) bool) {
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\'' {
			quoted = !quoted
			continue
		}
		if quoted {
			continue
		}
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		}
		if !fn(i, c, depth) {
			return
		}
	}
}

// matchParen returns the index of the parenthesis closing the one s starts
// with, or -1.
func matchParen(s string) int {
	end := -1
	scanSQL(s, func(i int, c byte, depth int) bool {
		if c == ')' && depth == 0 {
			end = i
			return false
		}
		return true
	})
	return end
}

// splitTopLevel splits s on commas outside parentheses and quotes.
func splitTopLevel(s string) []string {
	var out []string
	start := 0
	scanSQL(s, func(i int, c byte, depth int) bool {
		if c == ',' && depth == 0 {
			out = append(out, s[start:i])
			start = i + 1
		}
		return true
	})
	return append(out, s[start:])
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
