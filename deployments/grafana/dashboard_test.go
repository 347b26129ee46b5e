// Package grafana holds rigwatch's Grafana dashboard, rigwatch.json; its test
// keeps the dashboard's queries in step with the metrics rigwatch registers.
package grafana

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// metricKinds maps each metric name rigwatch registers to its kind
// ("Counter", "Gauge", "Histogram", "Summary"), read from the Go source of
// the module: every prometheus.*Opts literal outside tests. Reading the
// source rather than a registry also finds the metrics of package main and
// the labelled ones no code path has touched yet.
func metricKinds(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "prometheus" {
				return true
			}
			parts := map[string]string{}
			for _, e := range lit.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, _ := kv.Key.(*ast.Ident)
				if key == nil || (key.Name != "Namespace" && key.Name != "Subsystem" && key.Name != "Name") {
					continue
				}
				bl, ok := kv.Value.(*ast.BasicLit)
				if !ok || bl.Kind != token.STRING {
					t.Errorf("%s: metric %s is not a string literal; this test cannot read it", fset.Position(kv.Pos()), key.Name)
					continue
				}
				parts[key.Name], _ = strconv.Unquote(bl.Value)
			}
			if parts["Name"] == "" {
				return true
			}
			var fq []string
			for _, k := range []string{"Namespace", "Subsystem", "Name"} {
				if parts[k] != "" {
					fq = append(fq, parts[k])
				}
			}
			out[strings.Join(fq, "_")] = strings.TrimSuffix(sel.Sel.Name, "Opts")
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name, Type string
			Query      any `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	GridPos    map[string]int `json:"gridPos"`
	Targets    []struct {
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
		Datasource map[string]any `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

var (
	promqlStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promqlMatchers  = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promqlGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promqlNotMetric = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "offset": true, "and": true, "or": true, "unless": true, "inf": true, "nan": true}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping
// clauses are cut out, less function names (followed by "(") and keywords.
func metricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, " ")
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promqlIdent.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.' || s[loc[0]-1] == '$') {
			continue // part of a number such as 1e3, or a variable
		}
		if promqlNotMetric[strings.ToLower(id)] || strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " "), "(") {
			continue
		}
		out = append(out, id)
	}
	return out
}

func TestMetricNamesParser(t *testing.T) {
	f := func(expr string, want ...string) {
		t.Helper()
		got := metricNames(expr)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("metricNames(%q) = %v, want %v", expr, got, want)
		}
	}
	f(`sum by (stream) (rate(rigwatch_a_total{instance=~"$instance"}[$__rate_interval]))`, "rigwatch_a_total")
	f(`histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) * 60`, "x_bucket")
	f(`time() - max(y{a="b(c)"})`, "y")
	f(`a / on (x) group_left b offset 1h or vector(1e3)`, "a", "b")
}

// TestDashboard checks that rigwatch.json is a dashboard Grafana imports as
// it is (every query on the datasource variable, unique panel ids, a grid
// position each) and that every metric it queries is one rigwatch
// registers, with _bucket, _sum and _count only on histograms and
// summaries, so a renamed metric fails here instead of leaving an empty
// panel. The metrics issue 5 asks for must all be on it.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("rigwatch.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("rigwatch.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error(`no "datasource" variable of type datasource for Prometheus`)
	}

	registered := metricKinds(t, filepath.Join("..", ".."))
	if len(registered) == 0 {
		t.Fatal("found no metrics in the source")
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if _, ok := p.GridPos["w"]; !ok {
				t.Errorf("panel %q has no gridPos", p.Title)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource["uid"] != "${datasource}" {
				t.Errorf("panel %q: datasource %v, want the ${datasource} variable", p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no queries", p.Title)
			}
			for _, tg := range p.Targets {
				if tg.RefID == "" || tg.Datasource["uid"] != "${datasource}" {
					t.Errorf("panel %q: a query lacks its refId or the datasource variable", p.Title)
				}
				names := metricNames(tg.Expr)
				if len(names) == 0 {
					t.Errorf("panel %q: query %q selects no metric", p.Title, tg.Expr)
				}
				for _, n := range names {
					base, kind := n, registered[n]
					if kind == "" {
						for _, suf := range []string{"_bucket", "_sum", "_count"} {
							if k := registered[strings.TrimSuffix(n, suf)]; strings.HasSuffix(n, suf) && (k == "Histogram" || k == "Summary") {
								base, kind = strings.TrimSuffix(n, suf), k
							}
						}
					}
					if kind == "" {
						t.Errorf("panel %q queries %s, which rigwatch does not register", p.Title, n)
						continue
					}
					if (kind == "Histogram" || kind == "Summary") && base == n {
						t.Errorf("panel %q queries histogram %s without _bucket, _sum or _count", p.Title, n)
					}
					used[base] = true
				}
			}
		}
	}
	walk(d.Panels)

	for _, n := range []string{
		"rigwatch_ingest_consumed_records_total", "rigwatch_ingest_stored_records_total",
		"rigwatch_ingest_consumer_lag", "rigwatch_ingest_batch_records", "rigwatch_ingest_insert_seconds",
		"rigwatch_ingest_rejected_records_total", "rigwatch_alerts_opened_total",
		"rigwatch_detect_evaluation_seconds", "rigwatch_detect_event_time_seconds",
	} {
		if registered[n] == "" {
			t.Errorf("rigwatch no longer registers %s", n)
		}
		if !used[n] {
			t.Errorf("the dashboard does not show %s", n)
		}
	}
	var unused []string
	for n := range registered {
		if !used[n] {
			unused = append(unused, n)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Logf("registered but not on the dashboard: %v", unused)
	}
}
