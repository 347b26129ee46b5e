// Package store is rigwatch's ClickHouse storage: connection, migrations,
// batch inserts of contract records, and the queries that read them back.
// Every query reads the latest version of a key only (FINAL or argMax), so a
// redelivered or corrected record never counts twice.
package store

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/schemas"
)

// Config says how to reach ClickHouse. The zero value of each field takes
// the default named beside it.
type Config struct {
	// Addr is HOST:PORT of the native protocol; required. In cluster mode
	// it may list several servers, comma-separated: connections are spread
	// over those that answer.
	Addr        string
	Database    string        // default "rigwatch"
	Username    string        // default "default"
	Password    string        // never logged
	TLS         *tls.Config   // nil: plain TCP
	DialTimeout time.Duration // default 5s
	ReadTimeout time.Duration // default 5m
	MaxConns    int           // default 8
	// Cluster names a cluster of the servers' remote_servers: every table
	// is then a Distributed table over Replicated*MergeTree local tables,
	// created ON CLUSTER (see schemas.Cluster and docs/cluster.md). Empty:
	// one server.
	Cluster string
}

// Addrs returns the servers of Addr.
func (c *Config) Addrs() []string {
	var out []string
	for _, a := range strings.Split(c.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	addrs := c.Addrs()
	if len(addrs) == 0 {
		return errors.New("ClickHouse address is empty")
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("ClickHouse address %q: want HOST:PORT", a)
		}
	}
	if len(addrs) > 1 && c.Cluster == "" {
		return errors.New("several ClickHouse servers need a cluster name (--clickhouse-cluster) to be used together")
	}
	if c.Cluster != "" && !schemas.ValidIdent(c.Cluster) {
		return fmt.Errorf("cluster name %q is not a plain identifier", c.Cluster)
	}
	if c.Database == "" {
		c.Database = "rigwatch"
	}
	if !schemas.ValidIdent(c.Database) {
		return fmt.Errorf("database name %q is not a plain identifier", c.Database)
	}
	if c.Username == "" {
		c.Username = "default"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 5 * time.Minute
	}
	if c.MaxConns == 0 {
		c.MaxConns = 8
	}
	return nil
}

// Store is a ClickHouse connection pool bound to one database. It is safe
// for concurrent use.
type Store struct {
	conn    driver.Conn
	db      string
	cluster string // empty: one server
	log     *zap.Logger
}

// Open connects, creates the database if needed and applies pending
// migrations.
func Open(ctx context.Context, cfg Config, log *zap.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	conn, err := connect(cfg, cfg.Addrs())
	if err != nil {
		return nil, err
	}
	s := &Store{conn: conn, db: cfg.Database, cluster: cfg.Cluster, log: log.With(zap.String("component", "store"))}
	if s.cluster != "" {
		addrs, err := s.checkCluster(ctx, cfg)
		if err != nil {
			conn.Close()
			return nil, err
		}
		conn.Close()
		if s.conn, err = connect(cfg, addrs); err != nil {
			return nil, err
		}
	}
	if err := s.Migrate(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// connect opens a pool over addrs, tried in order.
func connect(cfg Config, addrs []string) (driver.Conn, error) {
	opts := &clickhouse.Options{
		Addr:             addrs,
		Auth:             clickhouse.Auth{Database: "default", Username: cfg.Username, Password: cfg.Password},
		TLS:              cfg.TLS,
		DialTimeout:      cfg.DialTimeout,
		ReadTimeout:      cfg.ReadTimeout,
		MaxOpenConns:     cfg.MaxConns,
		MaxIdleConns:     cfg.MaxConns,
		ConnMaxLifetime:  time.Hour,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
	}
	if cfg.Cluster != "" {
		opts.Settings = clusterSettings
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open ClickHouse at %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

// Database returns the database name.
func (s *Store) Database() string { return s.db }

// Conn returns the underlying connection, for packages that add their own
// queries.
func (s *Store) Conn() driver.Conn { return s.conn }

// Cluster returns the cluster name, empty for one server.
func (s *Store) Cluster() string { return s.cluster }

// Ping checks that the server answers; in cluster mode, that every shard
// answers and ZooKeeper serves (without it replicated tables take no
// writes).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return err
	}
	if s.cluster == "" {
		return nil
	}
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM cluster('"+s.cluster+"', system, one)").Scan(&n); err != nil {
		return fmt.Errorf("a shard of cluster %s does not answer: %w", s.cluster, err)
	}
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&n); err != nil {
		return fmt.Errorf("ZooKeeper does not answer: %w", err)
	}
	return nil
}

// Close closes the pool. Safe to call twice.
func (s *Store) Close() error {
	if s == nil || s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// migrationsDDL records which migrations were applied.
const migrationsDDL = `-- cluster: sharding key version
CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, applied_at DateTime) ENGINE = MergeTree ORDER BY version;`

// Migrate creates the database and applies the embedded migrations not yet
// recorded in schema_migrations. In cluster mode everything is created ON
// CLUSTER, and tables get a fresh ZooKeeper path (see schemas.Cluster).
func (s *Store) Migrate(ctx context.Context) error {
	var (
		migs     []schemas.Migration
		recorder []string
		err      error
	)
	if s.cluster == "" {
		migs, err = schemas.Migrations(s.db)
		if err == nil {
			recorder, err = schemas.SingleNodeStatements(s.db, migrationsDDL)
		}
	} else {
		c := schemas.Cluster{Name: s.cluster, PathSuffix: pathSuffix()}
		migs, err = schemas.ClusterMigrations(s.db, c)
		if err == nil {
			recorder, err = schemas.ClusterStatements(s.db, c, migrationsDDL)
		}
	}
	if err != nil {
		return err
	}
	// ON CLUSTER DDL waits for every server: skip what exists already, so
	// that a start with one replica down does not wait on it.
	if ok, err := s.exists(ctx, "schema_migrations"); err != nil {
		return err
	} else if !ok {
		create := "CREATE DATABASE IF NOT EXISTS " + s.db
		if s.cluster != "" {
			create += " ON CLUSTER " + s.cluster
		}
		if err := s.conn.Exec(ctx, create); err != nil {
			return fmt.Errorf("cannot create database %s: %w", s.db, err)
		}
		for _, stmt := range recorder {
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("cannot create schema_migrations: %w", err)
			}
		}
	}
	applied := map[uint32]bool{}
	rows, err := s.conn.Query(ctx, "SELECT version FROM "+s.db+".schema_migrations")
	if err != nil {
		return fmt.Errorf("cannot read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	for _, m := range migs {
		if applied[uint32(m.Version)] {
			continue
		}
		for _, stmt := range m.Statements {
			if err := s.conn.Exec(ctx, stmt); err != nil && !columnExists(err) {
				return fmt.Errorf("cannot apply migration %s: %w", m.Name, err)
			}
		}
		// A plain INSERT ... VALUES through Exec hangs on ClickHouse 18.16,
		// which waits for a data block: every insert goes as a batch.
		if err := s.insert(ctx, "schema_migrations", "version, name, applied_at", 1, func(int) []any {
			return []any{uint32(m.Version), m.Name, time.Now().UTC()}
		}); err != nil {
			return fmt.Errorf("cannot record migration %s: %w", m.Name, err)
		}
		s.log.Info("applied migration", zap.String("migration", m.Name), zap.String("cluster", s.cluster))
	}
	return nil
}

// columnExists reports whether err refuses to add a column that exists:
// processes starting together apply a pending migration together, and
// ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS, so the loser of the
// race finds the column there (code 44, also inside an ON CLUSTER error).
func columnExists(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == 44 {
		return true
	}
	return strings.Contains(err.Error(), "column with this name already exists")
}

// exists reports whether the database holds table on the server asked.
func (s *Store) exists(ctx context.Context, table string) (bool, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", s.db, table).Scan(&n); err != nil {
		return false, fmt.Errorf("cannot look for table %s.%s: %w", s.db, table, err)
	}
	return n > 0, nil
}

// pathSuffix returns a fresh suffix for the ZooKeeper paths of the tables
// one migration run creates: a table made again after a DROP never meets
// what the old one left in ZooKeeper. Replicas of one table agree on it
// because ON CLUSTER runs the same statement on each.
func pathSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102") + "_" + hex.EncodeToString(b)
}

// DropDatabase removes the database and everything in it (tests only); in
// cluster mode on every server.
func (s *Store) DropDatabase(ctx context.Context) error {
	q := "DROP DATABASE IF EXISTS " + s.db
	if s.cluster != "" {
		q += " ON CLUSTER " + s.cluster
	}
	return s.conn.Exec(ctx, q)
}
