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
	files, err := migrationFiles(db)
	if err != nil {
		return nil, err
	}
	out := make([]Migration, len(files))
	for i, f := range files {
		out[i] = Migration{Version: f.version, Name: f.name}
		for _, st := range f.statements {
			out[i].Statements = append(out[i].Statements, st.sql)
		}
	}
	return out, nil
}

type migrationFile struct {
	version    int
	name       string
	statements []statement
}

func migrationFiles(db string) ([]migrationFile, error) {
	if !ValidIdent(db) {
		return nil, fmt.Errorf("database name %q is not a plain identifier", db)
	}
	names, err := fs.Glob(ddlFS, "ddl/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []migrationFile
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
		out = append(out, migrationFile{version: v, name: base, statements: splitSQL(strings.ReplaceAll(string(body), "{db}", db))})
	}
	return out, nil
}

// statement is one DDL statement and the "-- cluster:" directives written
// just before it.
type statement struct {
	sql        string
	directives []string
}

const directivePrefix = "-- cluster:"

// splitSQL splits a file of statements on semicolons at line ends, dropping
// comment lines but keeping "-- cluster:" directives beside their
// statement. The DDL files hold no semicolons inside literals.
func splitSQL(s string) []statement {
	var out []statement
	var cur strings.Builder
	var dirs []string
	flush := func() {
		if sql := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); sql != "" {
			out = append(out, statement{sql: sql, directives: dirs})
		}
		cur.Reset()
		dirs = nil
	}
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, directivePrefix) {
			dirs = append(dirs, strings.TrimSpace(strings.TrimPrefix(t, directivePrefix)))
			continue
		}
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			flush()
		}
	}
	flush()
	return out
}
