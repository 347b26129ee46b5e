package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/sim"
)

// TestReplayDetectsFromMemoryAsFromStore: detection after a replay into an
// empty store, from the readings kept in memory, raises exactly the alerts
// that reading them back from ClickHouse raises (--detect-in-memory 0),
// and so does a budget the replay exceeds. The scenario gets a file
// replayed before the others, an earlier delivery of a tenth of its
// meters' readings for a day at three times the energy, with half a second
// more (the decoders keep whole seconds): older versions of readings the
// scenario's own files deliver again, which lose. Then, into a store that
// holds the scenario, a replay of that file alone reads back what the store
// holds (the readings it replaced and the days before), as it must.
func TestReplayDetectsFromMemoryAsFromStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := sim.New(sim.Config{Seed: 5, Feeders: 8, Days: 5})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := sim.WriteDir(ctx, s, dir, sim.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	late := t.TempDir()
	earlier(t, dir, late)
	ch := testenv.ClickHouseAddr(t)
	replay := func(db, dir string, args ...string) string {
		t.Helper()
		file := filepath.Join(t.TempDir(), "alerts.jsonl")
		args = append([]string{"replay", dir, "--clickhouse", ch, "--clickhouse-database", db,
			"--alerts-out", file, "--log-level", "error"}, args...)
		if out, err := run(t, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	fresh := testenv.DatabaseName
	mem := replay(fresh(), dir)
	back := replay(fresh(), dir, "--detect-in-memory", "0")
	over := replay(fresh(), dir, "--detect-in-memory", "1000")
	if strings.Count(back, "\n") < 3 {
		t.Fatalf("read back from ClickHouse, detection raised %d alerts; the test needs some", strings.Count(back, "\n"))
	}
	if mem != back {
		t.Errorf("from memory detection raised\n%s\nfrom ClickHouse\n%s", mem, back)
	}
	if over != back {
		t.Errorf("over budget detection raised\n%s\nfrom ClickHouse\n%s", over, back)
	}

	onto := func(args ...string) string {
		db := fresh()
		if out, err := run(t, "replay", dir, "--no-detect", "--clickhouse", ch, "--clickhouse-database", db, "--log-level", "error"); err != nil {
			t.Fatalf("replay: %v\n%s", err, out)
		}
		return replay(db, late, args...)
	}
	mem, back = onto(), onto("--detect-in-memory", "0")
	if strings.Count(back, "\n") < 1 {
		t.Fatal("a replay of late readings onto the scenario raised no alert; the test needs some")
	}
	if mem != back {
		t.Errorf("replayed onto stored readings, detection raised\n%s\nreading back\n%s", mem, back)
	}
}

// earlier writes readings-0000-earlier.csv into dir, and the same as
// readings-late.csv into late: the readings of every tenth meter on the
// scenario's third day, ts half a second later, three times the energy.
func earlier(t *testing.T, dir, late string) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "readings-0003.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(zr)
	sc.Scan()
	out.WriteString(sc.Text() + "\n") // meter_id,ts,kwh,interval_s
	n := 0
	for sc.Scan() {
		c := strings.Split(sc.Text(), ",")
		if len(c) != 4 || !strings.HasSuffix(c[0], "0") || !strings.HasSuffix(c[1], ":00Z") {
			continue
		}
		kwh, err := strconv.ParseFloat(c[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s,%s.5Z,%.3f,%s\n", c[0], strings.TrimSuffix(c[1], "Z"), 3*kwh, c[3])
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("only %d readings to deliver early", n)
	}
	for _, f := range []string{filepath.Join(dir, "readings-0000-earlier.csv"), filepath.Join(late, "readings-late.csv")} {
		if err := os.WriteFile(f, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
