package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

//go:embed ddl/*.sql
var ddlFS embed.FS

// Migration is one ordered step of the ClickHouse schema.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidIdent reports whether s may be used as a ClickHouse database name.
func ValidIdent(s string) bool { return identRE.MatchString(s) }

// Migrations returns the embedded migrations in order, with {db} replaced by
// db, which must be a plain identifier.
func Migrations(db string) ([]Migration, error) {
	if !ValidIdent(db) {
		return nil, fmt.Errorf("database name %q is not a plain identifier", db)
	}
	names, err := fs.Glob(ddlFS, "ddl/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Migration
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "ddl/"), ".sql")
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s lacks a numeric prefix", n)
		}
		body, err := ddlFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: base, Statements: splitSQL(strings.ReplaceAll(string(body), "{db}", db))})
	}
	return out, nil
}

// splitSQL splits a file of statements on semicolons at line ends, dropping
// comment lines. The DDL files hold no semicolons inside literals.
func splitSQL(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}
