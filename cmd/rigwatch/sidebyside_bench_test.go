package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/localch"
	"github.com/rigwatch/rigwatch/internal/localkafka"
	"github.com/rigwatch/rigwatch/schemas"
)

// BenchmarkSideBySide measures ingest against ClickHouse's own loader, in
// one run, on the same readings and the same private ClickHouse server:
//
//   - loader: clickhouse-client --query "INSERT INTO readings (...) FORMAT CSV"
//     of the readings as plain CSV, the reference;
//   - replay: rigwatch replay DIR (gzip CSV, with detection) and
//     rigwatch replay DIR --no-detect, each a process of its own;
//   - kafka: rigwatch serve (detection idle) draining a 6-partition backlog
//     of small JSON readings on the embedded broker, its steady state being
//     the rate between the times 5% and 95% of the rows were stored
//     (committed).
//
// Every round runs each contender once, between two runs of the loader on
// the same readings, and divides its rate by theirs; it also reports
// ClickHouse CPU per million rows (the server's own utime+stime over the run
// and the merges that follow it), the INSERTs made and the peak RSS of each
// rigwatch process. Run it with -benchtime 1x; RIGWATCH_BENCH_ROUNDS
// (default 3), RIGWATCH_BENCH_DAYS (default 25: 4.2M readings) and
// RIGWATCH_BENCH_KAFKA_ROWS (default 2,000,000) scale it, and
// RIGWATCH_BENCH_ONLY=kafka (or replay, replay-no-detect) runs one trial.
func BenchmarkSideBySide(b *testing.B) {
	if _, err := exec.LookPath("clickhouse-client"); err != nil {
		b.Fatal("the reference loader needs clickhouse-client (Debian package clickhouse-client)")
	}
	ctx := context.Background()
	days := envInt("RIGWATCH_BENCH_DAYS", 25)
	kafkaRows := envInt("RIGWATCH_BENCH_KAFKA_ROWS", 2_000_000)
	only := os.Getenv("RIGWATCH_BENCH_ONLY") // comma-separated trials
	bin := binary(b)
	tmp := b.TempDir()

	ch, err := localch.Start(ctx, filepath.Join(tmp, "clickhouse"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ch.Stop() })
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{ch.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	srv := &chServer{addr: ch.Addr, dir: ch.Dir, bin: bin, conn: conn, distinct: map[int]uint64{}}

	dir := filepath.Join(tmp, "scenario")
	if out, err := exec.Command(bin, "simulate", "--out", dir, "--days", strconv.Itoa(days)).CombinedOutput(); err != nil {
		b.Fatalf("simulate: %v\n%s", err, out)
	}
	all, some := filepath.Join(tmp, "all.csv"), filepath.Join(tmp, "some.csv")
	rows, msgs := loaderFiles(b, dir, all, some, kafkaRows)
	kafkaRows = len(msgs)

	br, err := localkafka.Start("", 0, schemas.Readings.Topic())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close)
	pw := ingest.NewWriter(br.Addrs(), schemas.Readings.Topic(), nil)
	pw.BatchSize, pw.BatchBytes, pw.Async = 20_000, 1<<20, false
	for i := 0; i < len(msgs); i += 200_000 {
		if err := pw.WriteMessages(ctx, msgs[min(i, len(msgs)):min(i+200_000, len(msgs))]...); err != nil {
			b.Fatal(ingest.WriteError(err))
		}
	}
	pw.Close()
	msgs = nil
	ends, err := ingest.EndOffsets(ctx, br.Addrs(), nil, schemas.Readings.Topic())
	if err != nil {
		b.Fatal(err)
	}
	var backlog int64
	for _, e := range ends {
		backlog += e
	}
	if backlog != int64(kafkaRows) {
		b.Fatalf("the backlog holds %d messages, want %d", backlog, kafkaRows)
	}
	say("%d readings (%d days of the simulated grid), %d of them as JSON in a %d-partition backlog; load average %s",
		rows, days, kafkaRows, localkafka.DefaultPartitions, loadAvg())

	loader := func(db string) result { return srv.loader(b, db, all, rows) }
	loaderKafka := func(db string) result { return srv.loader(b, db, some, kafkaRows) }
	// Each trial runs between two runs of its loader on the same readings,
	// its reference being their mean: load from the other users of the
	// machine drifts less between adjacent runs than across a round. A
	// loader run that ends one trial begins the next.
	trials := []trial{
		{"replay", "loader", loader, func(db string) result {
			return srv.rigwatch(b, db, rows, "replay", dir, "--log-level", "warn")
		}},
		{"replay-no-detect", "loader", loader, func(db string) result {
			return srv.rigwatch(b, db, rows, "replay", dir, "--no-detect", "--log-level", "warn")
		}},
		{"kafka", "loader-kafka", loaderKafka, func(db string) result { return srv.serve(b, db, br.Addrs(), kafkaRows) }},
	}
	nrounds := envInt("RIGWATCH_BENCH_ROUNDS", 3) * b.N
	var rounds []map[string]outcome
	runs := 0
	run := func(f func(string) result) result {
		runs++
		srv.quiesce(b)
		return f(fmt.Sprintf("bench_%d", runs))
	}
	b.ResetTimer()
	for i := 0; i < nrounds; i++ {
		got := map[string]outcome{}
		var prev *result
		prevKind := ""
		say("round %d (load average %s):", i+1, loadAvg())
		for _, t := range trials {
			if only != "" && !strings.Contains(","+only+",", ","+t.name+",") {
				continue
			}
			before := prev
			if prevKind != t.refKind {
				r := run(t.ref)
				before = &r
			}
			r := run(t.run)
			after := run(t.ref)
			o := outcome{r: r, ref: (before.rate() + after.rate()) / 2, refCPU: (before.chCPUPerM() + after.chCPUPerM()) / 2}
			got[t.name] = o
			say("  %-10s %s", t.refKind, before)
			say("  %-10s %s  %.2fx the loader", t.name, r, o.ratio())
			if t.name == "kafka" {
				say("  %-10s steady state %.0f rows/s = %.2fx the loader", "", r.steady, r.steady/o.ref)
			}
			prev, prevKind = &after, t.refKind
		}
		say("  %-10s %s (load average %s)", prevKind, prev, loadAvg())
		rounds = append(rounds, got)
	}
	b.StopTimer()

	report := func(unit string, f func(o outcome) float64, name string) {
		var v []float64
		for _, r := range rounds {
			if o, ok := r[name]; ok {
				v = append(v, f(o))
			}
		}
		if len(v) == 0 {
			return
		}
		slices.Sort(v)
		b.ReportMetric(v[len(v)/2], unit)
		say("%-26s median %.3f, min %.3f, max %.3f over %d rounds", unit, v[len(v)/2], v[0], v[len(v)-1], len(v))
	}
	report("replay/loader", outcome.ratio, "replay")
	report("replay-no-detect/loader", outcome.ratio, "replay-no-detect")
	report("kafka-steady/loader", func(o outcome) float64 { return o.r.steady / o.ref }, "kafka")
	report("kafka/loader", outcome.ratio, "kafka")
	report("kafka-CH-CPU-s/Mrows", func(o outcome) float64 { return o.r.chCPUPerM() }, "kafka")
	report("loader-CH-CPU-s/Mrows", func(o outcome) float64 { return o.refCPU }, "kafka")
	report("replay-CH-CPU-s/Mrows", func(o outcome) float64 { return o.r.chCPUPerM() }, "replay-no-detect")
	report("replay-peak-RSS-MB", func(o outcome) float64 { return o.r.rssMB }, "replay-no-detect")
	report("kafka-peak-RSS-MB", func(o outcome) float64 { return o.r.rssMB }, "kafka")
}

// trial is a contender and the loader it is measured against.
type trial struct {
	name, refKind string
	ref, run      func(db string) result
}

// outcome is a contender's run and its reference: the mean rate and
// ClickHouse CPU per million rows of the loader runs around it.
type outcome struct {
	r           result
	ref, refCPU float64
}

func (o outcome) ratio() float64 { return o.r.rate() / o.ref }

// result is one contender's run.
type result struct {
	rows   int
	wall   time.Duration
	steady float64       // rows/s between 5% and 95% stored (Kafka only)
	first  time.Duration // until the first rows were stored (Kafka only)
	chCPU  time.Duration // ClickHouse's CPU over the run and the merges after it
	rssMB  float64       // peak RSS of the rigwatch process
	ins    uint64        // INSERT queries ClickHouse ran
}

func (r result) rate() float64 { return float64(r.rows) / r.wall.Seconds() }

func (r result) chCPUPerM() float64 { return r.chCPU.Seconds() / (float64(r.rows) / 1e6) }

func (r result) String() string {
	s := fmt.Sprintf("%9.0f rows/s (%d rows in %.2fs), ClickHouse %.2f CPU-s per M rows, %d INSERTs", r.rate(), r.rows, r.wall.Seconds(), r.chCPUPerM(), r.ins)
	if r.first > 0 {
		s += fmt.Sprintf(", first rows stored after %.2fs", r.first.Seconds())
	}
	if r.rssMB > 0 {
		s += fmt.Sprintf(", peak RSS %.0f MB", r.rssMB)
	}
	return s
}

// chServer is the benchmark's private ClickHouse and the rigwatch binary.
type chServer struct {
	addr, dir, bin string
	conn           driver.Conn
	distinct       map[int]uint64 // distinct readings stored from n rows
}

func (s *chServer) port() string { return s.addr[strings.LastIndexByte(s.addr, ':')+1:] }

// cpu returns the server process's CPU time so far.
func (s *chServer) cpu(b *testing.B) time.Duration {
	pid, err := os.ReadFile(filepath.Join(s.dir, "server.pid"))
	if err != nil {
		b.Fatal(err)
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesised command: state is 3rd, utime 14th.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// count runs a query answering one number.
func (s *chServer) count(b *testing.B, q string) uint64 {
	var n uint64
	if err := s.conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		b.Fatalf("%s: %v", q, err)
	}
	return n
}

// quiesce waits until no merge has run for a second: the merges a run
// caused are charged to it, and do not slow the next. (The server starts
// merges a while after the inserts that call for them.)
func (s *chServer) quiesce(b *testing.B) {
	idle := 0
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end) && idle < 10; time.Sleep(100 * time.Millisecond) {
		if s.count(b, "SELECT count() FROM system.merges") == 0 {
			idle++
		} else {
			idle = 0
		}
	}
}

// migrate creates db with rigwatch's tables, outside the timed part.
func (s *chServer) migrate(b *testing.B, db string) {
	if out, err := exec.Command(s.bin, "migrate", "--clickhouse", s.addr, "--clickhouse-database", db, "--log-level", "warn").CombinedOutput(); err != nil {
		b.Fatalf("migrate: %v\n%s", err, out)
	}
}

// start notes ClickHouse's CPU time and INSERT count before a run.
func (s *chServer) start(b *testing.B) (time.Duration, uint64) {
	return s.cpu(b), s.count(b, "SELECT value FROM system.events WHERE event = 'InsertQuery'")
}

// finish completes a result: ClickHouse's CPU since cpu0 once the merges
// the run started are done, the INSERTs since ins0, the row count checked,
// the database dropped.
func (s *chServer) finish(b *testing.B, db string, cpu0 time.Duration, ins0 uint64, r *result) {
	s.quiesce(b)
	r.chCPU = s.cpu(b) - cpu0
	r.ins = s.count(b, "SELECT value FROM system.events WHERE event = 'InsertQuery'") - ins0
	// Every contender must store the same distinct readings (the
	// scenario repeats and corrects some).
	got := s.count(b, "SELECT count() FROM (SELECT 1 FROM "+db+".readings FINAL)")
	if s.distinct[r.rows] == 0 {
		s.distinct[r.rows] = got
	}
	if got != s.distinct[r.rows] {
		b.Fatalf("%s holds %d distinct readings of %d, where an earlier run stored %d", db, got, r.rows, s.distinct[r.rows])
	}
	if err := s.conn.Exec(context.Background(), "DROP DATABASE "+db); err != nil {
		b.Fatal(err)
	}
}

// loader inserts the plain CSV file with clickhouse-client.
func (s *chServer) loader(b *testing.B, db, csv string, rows int) result {
	s.migrate(b, db)
	f, err := os.Open(csv)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("clickhouse-client", "--port", s.port(), "--query",
		"INSERT INTO "+db+".readings (meter_id, ts, kwh, interval_s, version) FORMAT CSV")
	cmd.Stdin = f
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cpu0, ins0 := s.start(b)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("clickhouse-client: %v\n%s", err, out.String())
	}
	r := result{rows: rows, wall: time.Since(start)}
	s.finish(b, db, cpu0, ins0, &r)
	return r
}

// rigwatch runs a rigwatch command to completion against db.
func (s *chServer) rigwatch(b *testing.B, db string, rows int, args ...string) result {
	s.migrate(b, db)
	cmd := exec.Command(s.bin, append(args, "--clickhouse", s.addr, "--clickhouse-database", db)...)
	p := s.launch(b, cmd)
	err := cmd.Wait()
	wall := time.Since(p.start)
	close(p.stop)
	if err != nil {
		b.Fatalf("rigwatch %s: %v\n%s", strings.Join(args, " "), err, p.out.String())
	}
	r := result{rows: rows, wall: wall, rssMB: <-p.rss}
	s.finish(b, db, p.cpu0, p.ins0, &r)
	return r
}

// launched is a started process under measurement.
type launched struct {
	out   *bytes.Buffer
	cpu0  time.Duration // ClickHouse's CPU and INSERTs before it started
	ins0  uint64
	start time.Time
	stop  chan struct{} // close it to have rss report the peak
	rss   <-chan float64
}

// launch starts cmd, noting what its run is measured against.
func (s *chServer) launch(b *testing.B, cmd *exec.Cmd) launched {
	p := launched{out: &bytes.Buffer{}, stop: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	p.cpu0, p.ins0 = s.start(b)
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p.rss = watchRSS(cmd.Process.Pid, p.stop)
	return p
}

// serve runs rigwatch serve with detection idle until it has stored rows
// readings from the backlog, then stops it with SIGTERM.
func (s *chServer) serve(b *testing.B, db string, brokers []string, rows int) result {
	s.migrate(b, db)
	cmd := exec.Command(s.bin, "serve", "--kafka", brokers[0], "--kafka-group", db, "--clickhouse", s.addr,
		"--clickhouse-database", db, "--http", "127.0.0.1:0", "--detect-every", "24h", "--log-level", "warn",
		"--data-dir", b.TempDir())
	return s.drain(b, db, brokers, db+".readings", rows, cmd)
}

// drain runs cmd, a consumer in group of the readings backlog writing to
// db, until the group has committed rows messages, then stops it with
// SIGTERM.
func (s *chServer) drain(b *testing.B, db string, brokers []string, group string, rows int, cmd *exec.Cmd) result {
	p := s.launch(b, cmd)
	out, start := p.out, p.start
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Poll the offsets the group committed, which serve commits once what
	// they cover is stored. (Polling ClickHouse would cost it about 1 ms of
	// CPU a query, and its count() falls short of the input as merges
	// collapse the scenario's repeated readings.)
	ends, err := ingest.EndOffsets(context.Background(), brokers, nil, schemas.Readings.Topic())
	if err != nil {
		b.Fatal(err)
	}
	type point struct {
		at time.Duration
		n  int
	}
	var pts []point
	deadline := time.Now().Add(3 * time.Minute)
	for {
		behind, err := ingest.Behind(context.Background(), brokers, nil, group, schemas.Readings.Topic(), ends)
		if err != nil {
			behind = int64(rows) // the group is not formed yet
		}
		n := rows - int(behind)
		pts = append(pts, point{time.Since(start), n})
		if n >= rows {
			break
		}
		select {
		case err := <-done:
			b.Fatalf("%s stopped early: %v\n%s", cmd.Path, err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s stored %d of %d readings in 3 minutes\n%s", cmd.Path, n, rows, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := result{rows: rows, wall: pts[len(pts)-1].at}
	// when interpolates the time at which n rows were stored.
	// Steady state: the rows stored between the first poll that found 5%
	// of them stored and the first that found 95%, over the time between.
	// Rows are stored an insert at a time, so progress is a staircase:
	// both ends are steps, and the rate is that of the inserts between.
	at := func(frac float64) point {
		return pts[sort.Search(len(pts), func(i int) bool { return float64(pts[i].n) >= frac*float64(rows) })]
	}
	p5, p95 := at(0.05), at(0.95)
	r.first = at(1 / float64(rows)).at
	if p95.at > p5.at {
		r.steady = float64(p95.n-p5.n) / (p95.at - p5.at).Seconds()
	}
	close(p.stop)
	r.rssMB = <-p.rss
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			b.Fatalf("%s: %v\n%s", cmd.Path, err, out.String())
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		b.Fatalf("%s did not stop within a minute of SIGTERM", cmd.Path)
	}
	if r.wall > 20*time.Second {
		// A stall: show what the process said about it.
		say("  %s took %.1fs; its log ends:\n%s", db, r.wall.Seconds(), lastBytes(out.String(), 4000))
	}
	s.finish(b, db, p.cpu0, p.ins0, &r)
	return r
}

// lastBytes returns the last n bytes of s.
func lastBytes(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// watchRSS follows the peak RSS (VmHWM) of a started process until stop is
// closed, and then returns it in MB. The rusage of a process started from
// Go does not serve: Go starts it with CLONE_VM, and exec then records the
// parent's peak as the child's.
func watchRSS(pid int, stop <-chan struct{}) <-chan float64 {
	out := make(chan float64, 1)
	go func() {
		var peak float64
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
				for _, l := range strings.Split(string(st), "\n") {
					if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
						kb, _ := strconv.ParseFloat(f[1], 64)
						peak = max(peak, kb/1024)
					}
				}
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// loaderFiles writes the readings of the scenario in dir as the loader's
// plain CSV: all of them to all, the first n to some; and returns how many
// there are and the first n as JSON messages keyed by meter.
func loaderFiles(b *testing.B, dir, all, some string, n int) (int, []kafka.Message) {
	files, err := ingest.FindFiles(dir)
	if err != nil {
		b.Fatal(err)
	}
	fa, err := os.Create(all)
	if err != nil {
		b.Fatal(err)
	}
	fs, err := os.Create(some)
	if err != nil {
		b.Fatal(err)
	}
	wa, ws := bufio.NewWriterSize(fa, 1<<20), bufio.NewWriterSize(fs, 1<<20)
	var msgs []kafka.Message
	rows := 0
	for _, f := range files {
		if f.Stream != schemas.Readings {
			continue
		}
		rf, err := os.Open(f.Path)
		if err != nil {
			b.Fatal(err)
		}
		zr, err := gzip.NewReader(rf)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		sc.Scan() // header: meter_id,ts,kwh,interval_s
		for sc.Scan() {
			c := strings.Split(sc.Text(), ",")
			if len(c) != 4 || len(c[1]) != len("2006-01-02T15:04:05Z") {
				b.Fatalf("%s: unexpected line %q", f.Path, sc.Text())
			}
			rows++
			// ClickHouse 18.16 reads DateTime in CSV as "YYYY-MM-DD hh:mm:ss".
			line := fmt.Sprintf("%s,%s %s,%s,%s,%d\n", c[0], c[1][:10], c[1][11:19], c[2], c[3], rows)
			wa.WriteString(line)
			if len(msgs) < n {
				ws.WriteString(line)
				v := fmt.Sprintf(`{"meter_id":%q,"ts":%q,"kwh":%s,"interval_s":%s}`, c[0], c[1], c[2], c[3])
				msgs = append(msgs, kafka.Message{Key: []byte(c[0]), Value: []byte(v)})
			}
		}
		if err := sc.Err(); err != nil {
			b.Fatal(err)
		}
		rf.Close()
	}
	for _, w := range []*bufio.Writer{wa, ws} {
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	fa.Close()
	fs.Close()
	return rows, msgs
}

// say prints a line of the benchmark's report to standard output: go test
// keeps only the first lines a benchmark logs.
func say(format string, args ...any) {
	fmt.Printf("    "+format+"\n", args...)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// loadAvg returns the 1-, 5- and 15-minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}
