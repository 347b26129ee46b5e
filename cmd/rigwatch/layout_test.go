package main

import (
	"go/build"
	"strings"
	"testing"
)

const module = "github.com/rigwatch/rigwatch/"

// deps returns every package pkg imports, directly or not, leaving the
// standard library out: production code only (tests may import more).
func deps(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	var walk func(path string)
	walk = func(path string) {
		p, err := build.Import(path, "", 0)
		if err != nil {
			t.Fatalf("cannot read package %s: %v", path, err)
		}
		for _, imp := range p.Imports {
			if seen[imp] || !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				continue // seen, or the standard library
			}
			seen[imp] = true
			walk(imp)
		}
	}
	walk(pkg)
	return seen
}

// TestPackageLayering keeps the imports flowing one way (docs: the shape
// of the house): storage does not know the registry, the rules know
// neither Kafka nor ClickHouse, investigation does not know HTTP.
func TestPackageLayering(t *testing.T) {
	for _, c := range []struct {
		pkg       string
		forbidden []string
	}{
		{"store", []string{module + "registry", module + "detect", module + "api", module + "investigate"}},
		{"detect", []string{"github.com/segmentio/kafka-go", "github.com/ClickHouse/clickhouse-go/v2", module + "store", module + "ingest"}},
		{"registry", []string{"github.com/segmentio/kafka-go", "github.com/ClickHouse/clickhouse-go/v2", module + "store", module + "ingest"}},
		{"schemas", []string{module + "registry", module + "store", module + "ingest", "github.com/segmentio/kafka-go"}},
		{"investigate", []string{module + "api", module + "notify", module + "ingest"}},
		{"leader", []string{module + "store", module + "detect"}},
	} {
		d := deps(t, module+c.pkg)
		for _, f := range c.forbidden {
			if d[f] {
				t.Errorf("%s imports %s", c.pkg, f)
			}
		}
	}
}
