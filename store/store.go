// Package store is rigwatch's ClickHouse storage: connection, migrations,
// batch inserts of contract records, and the queries that read them back.
// Every query reads the latest version of a key only (FINAL or argMax), so a
// redelivered or corrected record never counts twice.
package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/schemas"
)

// Config says how to reach ClickHouse. The zero value of each field takes
// the default named beside it.
type Config struct {
	Addr        string        // HOST:PORT of the native protocol; required
	Database    string        // default "rigwatch"
	Username    string        // default "default"
	Password    string        // never logged
	TLS         *tls.Config   // nil: plain TCP
	DialTimeout time.Duration // default 5s
	ReadTimeout time.Duration // default 5m
	MaxConns    int           // default 8
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Addr == "" {
		return errors.New("ClickHouse address is empty")
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
	conn driver.Conn
	db   string
	log  *zap.Logger
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
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:             []string{cfg.Addr},
		Auth:             clickhouse.Auth{Database: "default", Username: cfg.Username, Password: cfg.Password},
		TLS:              cfg.TLS,
		DialTimeout:      cfg.DialTimeout,
		ReadTimeout:      cfg.ReadTimeout,
		MaxOpenConns:     cfg.MaxConns,
		MaxIdleConns:     cfg.MaxConns,
		ConnMaxLifetime:  time.Hour,
		ConnOpenStrategy: clickhouse.ConnOpenInOrder,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open ClickHouse at %s: %w", cfg.Addr, err)
	}
	s := &Store{conn: conn, db: cfg.Database, log: log.With(zap.String("component", "store"))}
	if err := s.Migrate(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// Database returns the database name.
func (s *Store) Database() string { return s.db }

// Conn returns the underlying connection, for packages that add their own
// queries.
func (s *Store) Conn() driver.Conn { return s.conn }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// Close closes the pool. Safe to call twice.
func (s *Store) Close() error {
	if s == nil || s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// Migrate creates the database and applies the embedded migrations not yet
// recorded in schema_migrations.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+s.db); err != nil {
		return fmt.Errorf("cannot create database %s: %w", s.db, err)
	}
	if err := s.conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+s.db+".schema_migrations (version UInt32, name String, applied_at DateTime) ENGINE = MergeTree ORDER BY version"); err != nil {
		return fmt.Errorf("cannot create schema_migrations: %w", err)
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
	migs, err := schemas.Migrations(s.db)
	if err != nil {
		return err
	}
	for _, m := range migs {
		if applied[uint32(m.Version)] {
			continue
		}
		for _, stmt := range m.Statements {
			if err := s.conn.Exec(ctx, stmt); err != nil {
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
		s.log.Info("applied migration", zap.String("migration", m.Name))
	}
	return nil
}

// DropDatabase removes the database and everything in it (tests only).
func (s *Store) DropDatabase(ctx context.Context) error {
	return s.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+s.db)
}
