package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// Bad input at volume (issue 6, item 4): readings with 1% garbage of every
// kind, through the Kafka consumer and through file replay, against the
// embedded broker and a real ClickHouse. Every bad input must be in the
// rejects table under its field and rule, exactly as many as were injected;
// every good reading must be stored once.

// dirtySpec describes a generated stream of readings.
type dirtySpec struct {
	N        int // inputs (messages, or CSV data lines)
	Meters   int // distinct meter ids; readings cycle through them (prime to 100, so every meter has good readings)
	Limit    int // the configured size limit
	Oversize int // size of an over-limit input
	// HugeEvery: one bad slot in HugeEvery carries an over-limit input; 0
	// gives over-limit inputs an equal share with the other kinds.
	HugeEvery int
	Clean     bool // no garbage (the baseline of the benchmark)
	// QuoteLine is the file line (header = line 1) of the CSV broken quote.
	QuoteLine int
}

// dirtyWant is what storage must hold afterwards.
type dirtyWant struct {
	Rows    int              // distinct good readings
	KWh     float64          // their energy; values are multiples of 1/8, so sums are exact
	Rejects map[string]int64 // "field rule" -> count
	Bad     int
	PerMtr  map[string]store.MeterTotal
}

func newWant() dirtyWant {
	return dirtyWant{Rejects: map[string]int64{}, PerMtr: map[string]store.MeterTotal{}}
}

var dirtyBase = time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)

// good returns the fields of good reading i: every i has its own
// (meter_id, ts).
func good(sp dirtySpec, i int) (meter string, ts string, kwh float64) {
	meter = "M" + strconv.Itoa(100000 + i%sp.Meters)[1:]
	ts = dirtyBase.Add(time.Duration(i/sp.Meters+1) * 15 * time.Minute).Format(time.RFC3339)
	kwh = float64(i%997) / 8
	return
}

// isBad says whether input i is garbage, and which bad slot it fills.
func isBad(sp dirtySpec, i int) (int, bool) {
	if sp.Clean || i%100 != 37 {
		return 0, false
	}
	return i / 100, true
}

// isDup says whether input i redelivers the good reading before it: not
// garbage, and it must not count twice.
func isDup(sp dirtySpec, i int) bool { return i%100 == 71 }

// A badKind is one kind of garbage and the field and rule it must be
// rejected under.
type badKind struct {
	name, field, rule string
	value             func(m, ts string) []byte // nil value: a Kafka null
}

func jsonReading(m, ts, kwh string) []byte {
	return []byte(`{"meter_id":"` + m + `","ts":"` + ts + `","kwh":` + kwh + `,"interval_s":900}`)
}

var jsonKinds = []badKind{
	{"invalid UTF-8", "", schemas.RuleEncoding, func(m, ts string) []byte { return jsonReading(m+"\xff\xfe", ts, "1") }},
	{"truncated JSON", "", schemas.RuleSyntax, func(m, ts string) []byte { v := jsonReading(m, ts, "1"); return v[:len(v)/2] }},
	{"NaN token", "", schemas.RuleSyntax, func(m, ts string) []byte { return jsonReading(m, ts, "NaN") }},
	{"Infinity token", "", schemas.RuleSyntax, func(m, ts string) []byte { return jsonReading(m, ts, "-Infinity") }},
	{"NaN string", "kwh", schemas.RuleType, func(m, ts string) []byte { return jsonReading(m, ts, `"NaN"`) }},
	{"Infinity string", "kwh", schemas.RuleType, func(m, ts string) []byte { return jsonReading(m, ts, `"+Inf"`) }},
	{"overflow to infinity", "kwh", schemas.RuleType, func(m, ts string) []byte { return jsonReading(m, ts, "1e999") }},
	{"negative energy", "kwh", schemas.RuleRange, func(m, ts string) []byte { return jsonReading(m, ts, "-0.5") }},
	{"absurd energy", "kwh", schemas.RuleRange, func(m, ts string) []byte { return jsonReading(m, ts, "4e9") }},
	{"year 1", "ts", schemas.RuleRange, func(m, _ string) []byte { return jsonReading(m, "0001-01-01T00:00:00Z", "1") }},
	{"year 9999", "ts", schemas.RuleRange, func(m, _ string) []byte { return jsonReading(m, "9999-12-31T23:45:00Z", "1") }},
	{"ts not a timestamp", "ts", schemas.RuleFormat, func(m, _ string) []byte { return jsonReading(m, "yesterday", "1") }},
	{"ts a number", "ts", schemas.RuleType, func(m, _ string) []byte {
		return []byte(`{"meter_id":"` + m + `","ts":1759277700,"kwh":1}`)
	}},
	{"meter_id a number", "meter_id", schemas.RuleType, func(_, ts string) []byte {
		return []byte(`{"meter_id":42,"ts":"` + ts + `","kwh":1}`)
	}},
	{"interval_s a string", "interval_s", schemas.RuleType, func(m, ts string) []byte {
		return []byte(`{"meter_id":"` + m + `","ts":"` + ts + `","kwh":1,"interval_s":"900"}`)
	}},
	{"missing kwh", "kwh", schemas.RuleMissing, func(m, ts string) []byte { return []byte(`{"meter_id":"` + m + `","ts":"` + ts + `"}`) }},
	{"missing meter_id", "meter_id", schemas.RuleMissing, func(_, ts string) []byte { return []byte(`{"ts":"` + ts + `","kwh":1}`) }},
	{"empty meter_id", "meter_id", schemas.RuleMissing, func(_, ts string) []byte { return jsonReading("", ts, "1") }},
	{"not an object", "", schemas.RuleType, func(m, ts string) []byte { return []byte(`["` + m + `","` + ts + `",1]`) }},
	{"null on a non-registry topic", "", schemas.RuleMissing, func(string, string) []byte { return nil }},
}

// filler returns n bytes of JSON-safe padding, shared between calls.
var fillers = map[int][]byte{}

func filler(n int) []byte {
	if b, ok := fillers[n]; ok {
		return b
	}
	b := bytes.Repeat([]byte("x"), n)
	fillers[n] = b
	return b
}

// oversizeJSON is a well-formed reading padded past the limit: rejected for
// its size alone.
func oversizeJSON(sp dirtySpec, m, ts string) []byte {
	pad := filler(sp.Oversize)
	v := make([]byte, 0, sp.Oversize+128)
	v = append(v, `{"meter_id":"`+m+`","ts":"`+ts+`","kwh":1,"pad":"`...)
	v = append(v, pad...)
	return append(v, `"}`...)
}

// dirtyMessages generates the readings topic's messages and what storage
// must hold after they are consumed.
func dirtyMessages(sp dirtySpec) ([]kafka.Message, dirtyWant) {
	w := newWant()
	msgs := make([]kafka.Message, 0, sp.N)
	var prev kafka.Message
	var huge []byte
	for i := 0; i < sp.N; i++ {
		m, ts, kwh := good(sp, i)
		if slot, bad := isBad(sp, i); bad {
			var v []byte
			var field, rule string
			if sp.HugeEvery > 0 && slot%sp.HugeEvery == 0 || sp.HugeEvery == 0 && slot%(len(jsonKinds)+1) == len(jsonKinds) {
				if huge == nil { // one buffer for every over-limit message
					huge = oversizeJSON(sp, "M00000", ts)
				}
				v, field, rule = huge, "", schemas.RuleSize
			} else {
				k := jsonKinds[slot%len(jsonKinds)]
				if sp.HugeEvery == 0 {
					k = jsonKinds[slot%(len(jsonKinds)+1)]
				}
				v, field, rule = k.value(m, ts), k.field, k.rule
			}
			w.Rejects[field+" "+rule]++
			w.Bad++
			msgs = append(msgs, kafka.Message{Key: []byte(m), Value: v})
			continue
		}
		if isDup(sp, i) && prev.Value != nil {
			msgs = append(msgs, prev)
			continue
		}
		prev = kafka.Message{Key: []byte(m), Value: jsonReading(m, ts, strconv.FormatFloat(kwh, 'g', -1, 64))}
		msgs = append(msgs, prev)
		w.Rows++
		w.KWh += kwh
		t := w.PerMtr[m]
		t.Rows++
		t.KWh += kwh
		w.PerMtr[m] = t
	}
	return msgs, w
}

// A csvKind is one kind of garbage in a readings CSV line.
type csvKind struct {
	name, field, rule string
	line              func(m, ts string) string
}

var csvKinds = []csvKind{
	{"invalid UTF-8", "", schemas.RuleEncoding, func(m, ts string) string { return m + "\xff," + ts + ",1,900" }},
	{"bare quote", "", schemas.RuleSyntax, func(m, ts string) string { return m + `"x,` + ts + ",1,900" }},
	{"NaN", "kwh", schemas.RuleFinite, func(m, ts string) string { return m + "," + ts + ",NaN,900" }},
	{"Inf", "kwh", schemas.RuleFinite, func(m, ts string) string { return m + "," + ts + ",-Inf,900" }},
	{"Infinity", "kwh", schemas.RuleFinite, func(m, ts string) string { return m + "," + ts + ",infinity,900" }},
	{"negative energy", "kwh", schemas.RuleRange, func(m, ts string) string { return m + "," + ts + ",-3,900" }},
	{"absurd energy", "kwh", schemas.RuleRange, func(m, ts string) string { return m + "," + ts + ",1e12,900" }},
	{"year 1", "ts", schemas.RuleRange, func(m, _ string) string { return m + ",0001-01-01T00:00:00Z,1,900" }},
	{"year 9999", "ts", schemas.RuleRange, func(m, _ string) string { return m + ",9999-12-31T23:45:00Z,1,900" }},
	{"ts a number", "ts", schemas.RuleFormat, func(m, _ string) string { return m + ",1759277700,1,900" }},
	{"kwh a word", "kwh", schemas.RuleType, func(m, ts string) string { return m + "," + ts + ",lots,900" }},
	{"interval_s a word", "interval_s", schemas.RuleType, func(m, ts string) string { return m + "," + ts + ",1,quarter" }},
	{"interval_s zero", "interval_s", schemas.RuleRange, func(m, ts string) string { return m + "," + ts + ",1,0" }},
	{"missing kwh", "kwh", schemas.RuleMissing, func(m, ts string) string { return m + "," + ts + ",,900" }},
	{"truncated row", "kwh", schemas.RuleMissing, func(m, ts string) string { return m + "," + ts }},
	{"missing meter_id", "meter_id", schemas.RuleMissing, func(_, ts string) string { return "," + ts + ",1,900" }},
}

// writeDirtyCSV writes readings.csv into dir (header + sp.N data lines) and
// returns what storage must hold after it is replayed.
func writeDirtyCSV(t testing.TB, dir string, sp dirtySpec) dirtyWant {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "readings.csv"))
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	bw.WriteString("meter_id,ts,kwh,interval_s\n")
	w := newWant()
	var prev string
	reject := func(field, rule string) {
		w.Rejects[field+" "+rule]++
		w.Bad++
	}
	for i := 0; i < sp.N; i++ {
		m, ts, kwh := good(sp, i)
		lineNo := i + 2
		if sp.QuoteLine > 0 && lineNo == sp.QuoteLine && !sp.Clean {
			// The broken quote: it must cost this line only, not the rest
			// of the file.
			bw.WriteString(`"` + m + "," + ts + ",1,900\n")
			reject("", schemas.RuleSyntax)
			continue
		}
		if slot, bad := isBad(sp, i); bad {
			if sp.HugeEvery > 0 && slot%sp.HugeEvery == 0 || sp.HugeEvery == 0 && slot%(len(csvKinds)+1) == len(csvKinds) {
				bw.WriteString(m + "," + ts + ",1,900,")
				bw.Write(filler(sp.Oversize))
				bw.WriteByte('\n')
				reject("", schemas.RuleSize)
				continue
			}
			k := csvKinds[slot%len(csvKinds)]
			if sp.HugeEvery == 0 {
				k = csvKinds[slot%(len(csvKinds)+1)]
			}
			bw.WriteString(k.line(m, ts) + "\n")
			reject(k.field, k.rule)
			continue
		}
		if isDup(sp, i) && prev != "" {
			bw.WriteString(prev)
			continue
		}
		prev = m + "," + ts + "," + strconv.FormatFloat(kwh, 'g', -1, 64) + ",900\n"
		bw.WriteString(prev)
		w.Rows++
		w.KWh += kwh
		t := w.PerMtr[m]
		t.Rows++
		t.KWh += kwh
		w.PerMtr[m] = t
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return w
}

// rejectCounts counts the stored rejects of stream by "field rule".
func rejectCounts(t testing.TB, ctx context.Context, st *store.Store, stream schemas.Stream) map[string]int64 {
	t.Helper()
	rows, err := st.Conn().Query(ctx, "SELECT field, rule, count() FROM "+st.Database()+".rejects FINAL WHERE stream = ? GROUP BY field, rule", string(stream))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var f, r string
		var n uint64
		if err := rows.Scan(&f, &r, &n); err != nil {
			t.Fatal(err)
		}
		out[f+" "+r] = int64(n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkStored compares storage with want: the rejects by field and rule,
// the distinct readings and their energy, overall and per meter.
func checkStored(t testing.TB, ctx context.Context, st *store.Store, want dirtyWant) {
	t.Helper()
	got := rejectCounts(t, ctx, st, schemas.Readings)
	for k, n := range want.Rejects {
		if got[k] != n {
			t.Errorf("rejects %q: %d stored, %d injected", k, got[k], n)
		}
	}
	for k, n := range got {
		if _, ok := want.Rejects[k]; !ok {
			t.Errorf("rejects %q: %d stored, none injected", k, n)
		}
	}
	tot, err := st.ReadingTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tot.Rows != uint64(want.Rows) || tot.KWh != want.KWh {
		t.Errorf("stored %d readings, %v kWh; want %d, %v kWh", tot.Rows, tot.KWh, want.Rows, want.KWh)
	}
	per, err := st.MeterEnergy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for m, w := range want.PerMtr {
		if g := per[m]; g != w && bad < 5 {
			bad++
			t.Errorf("meter %s: stored %+v, want %+v", m, g, w)
		}
	}
	if len(per) != len(want.PerMtr) {
		t.Errorf("stored readings of %d meters, want %d", len(per), len(want.PerMtr))
	}
}

// consume runs a consumer of stream on topic until its group has no lag,
// and returns its stats and how long it took.
func consume(t testing.TB, ctx context.Context, addrs []string, st *store.Store, stream schemas.Stream, topic, group string,
	maxBytes int, rejects ingest.RejectPublisher, hook ingest.BatchHook) (ingest.ConsumerStats, time.Duration) {
	t.Helper()
	c, err := ingest.NewConsumer(ingest.ConsumerConfig{Brokers: addrs, Stream: stream, Topic: topic, GroupID: group,
		MaxBytes: maxBytes, FlushInterval: 250 * time.Millisecond, NewInserter: func() ingest.Inserter { return st.Inserter() }},
		st, rejects, hook, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Run(rctx) }()
	for {
		lag, err := ingest.GroupLag(ctx, addrs, nil, group, topic)
		if err == nil && lag == 0 {
			break
		}
		if ctx.Err() != nil {
			stop()
			<-done
			t.Fatalf("consumer of %s did not catch up: lag %d, %v, stats %+v", topic, lag, err, c.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return c.Stats(), took
}

// produce writes msgs with a writer whose batches may hold values up to
// maxValue bytes.
func produce(t testing.TB, ctx context.Context, addrs []string, topic string, maxValue int, msgs []kafka.Message) {
	t.Helper()
	w := ingest.NewWriter(addrs, topic, nil)
	if maxValue > 800_000 {
		w.BatchBytes = int64(maxValue) + 1<<20
	}
	defer w.Close()
	const chunk = 20_000
	for i := 0; i < len(msgs); i += chunk {
		j := min(i+chunk, len(msgs))
		if err := w.WriteMessages(ctx, msgs[i:j]...); err != nil {
			t.Fatalf("cannot produce: %v", ingest.WriteError(err))
		}
	}
}

// dirtyTest is the scale of the tests in make test: 100,000 inputs, the
// limit lowered to 64 KiB (the configurable limit at work) and 100 KiB
// over-limit inputs in an equal share with every other kind.
var dirtyTest = dirtySpec{N: 100_000, Meters: 499, Limit: 64 << 10, Oversize: 100 << 10, QuoteLine: 50_000}

// TestBadInputKafka sends 100,000 readings with 1% garbage of every kind
// through the consumer, and registry records with unknown enum values and a
// tombstone through a meters consumer: every bad message is a reject under
// its field and rule, every good reading is stored once, and readings from
// meters not in the registry are stored and reported.
func TestBadInputKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st := testenv.Store(t)
	br := testenv.Broker(t, "t.readings", "t.meters", schemas.RejectsTopic)
	sp := dirtyTest
	msgs, want := dirtyMessages(sp)
	if want.Bad != sp.N/100 {
		t.Fatalf("generated %d bad messages, want %d", want.Bad, sp.N/100)
	}

	// The registry knows the first half of the meters; a few records are
	// bad, and a tombstone (a null value on a registry topic) is good.
	var meters []kafka.Message
	wantMeterRejects := map[string]int64{}
	for i := 0; i < sp.Meters/2; i++ {
		id := "M" + strconv.Itoa(100000 + i)[1:]
		v := `{"meter_id":"` + id + `","feeder_id":"F1","role":"customer","class":"residential","updated_at":"2025-09-01T00:00:00Z"}`
		meters = append(meters, kafka.Message{Key: []byte(id), Value: []byte(v)})
	}
	for _, bad := range []struct{ v, key string }{
		{`{"meter_id":"X1","feeder_id":"F1","role":"substation","class":"residential","updated_at":"2025-09-01T00:00:00Z"}`, "role enum"},
		{`{"meter_id":"X2","feeder_id":"F1","role":"customer","class":"crypto","updated_at":"2025-09-01T00:00:00Z"}`, "class enum"},
		{`{"meter_id":"X3","feeder_id":"F1","role":"site","class":"mining","updated_at":"2025-09-01T00:00:00Z"}`, "site_id missing"},
		{`{"meter_id":"X4","feeder_id":"F1","role":"customer","class":"residential","updated_at":"0001-01-01T00:00:00Z"}`, "updated_at range"},
	} {
		meters = append(meters, kafka.Message{Key: []byte("X"), Value: []byte(bad.v)})
		wantMeterRejects[bad.key]++
	}
	meters = append(meters, kafka.Message{Key: []byte("GONE"), Value: []byte(`{"meter_id":"GONE","feeder_id":"F1","role":"customer","class":"residential","updated_at":"2025-09-01T00:00:00Z"}`)},
		kafka.Message{Key: []byte("GONE"), Value: nil})

	produce(t, ctx, br.Addrs(), "t.meters", 0, meters)
	produce(t, ctx, br.Addrs(), "t.readings", sp.Oversize, msgs)
	rejW := ingest.NewWriter(br.Addrs(), schemas.RejectsTopic, nil)
	defer rejW.Close()
	rejects := ingest.KafkaRejects{W: rejW}

	ms, _ := consume(t, ctx, br.Addrs(), st, schemas.Meters, "t.meters", "gm", 0, rejects, nil)
	if ms.Rejected != 4 || ms.Consumed != int64(len(meters)) {
		t.Errorf("meters consumer: %+v, want %d consumed, 4 rejected", ms, len(meters))
	}
	if got := rejectCounts(t, ctx, st, schemas.Meters); fmt.Sprint(got) != fmt.Sprint(wantMeterRejects) {
		t.Errorf("meter rejects %v, want %v", got, wantMeterRejects)
	}
	rs, _ := consume(t, ctx, br.Addrs(), st, schemas.Readings, "t.readings", "gr", sp.Limit, rejects, nil)
	if rs.Consumed != int64(len(msgs)) || rs.Rejected != int64(want.Bad) {
		t.Errorf("readings consumer: %+v, want %d consumed, %d rejected", rs, len(msgs), want.Bad)
	}
	checkStored(t, ctx, st, want)

	// Readings from meters not in the registry are good: stored, and
	// reported with their count, energy and span.
	unknown, err := st.UnknownMeters(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) != sp.Meters-sp.Meters/2 {
		seen := map[string]bool{}
		for _, u := range unknown {
			seen[u.MeterID] = true
		}
		var missing []string
		for i := sp.Meters / 2; i < sp.Meters; i++ {
			if id := "M" + strconv.Itoa(100000 + i)[1:]; !seen[id] {
				missing = append(missing, id)
			}
		}
		t.Errorf("%d unknown meters reported, want %d; missing %v", len(unknown), sp.Meters-sp.Meters/2, missing)
	}
	for _, u := range unknown {
		w := want.PerMtr[u.MeterID]
		if n, _ := strconv.Atoi(u.MeterID[1:]); n < sp.Meters/2 || u.Readings != w.Rows || u.KWh != w.KWh || u.FirstTS.IsZero() || u.LastTS.Before(u.FirstTS) {
			t.Errorf("unknown meter %+v, want %d readings %v kWh, id >= %d", u, w.Rows, w.KWh, sp.Meters/2)
		}
	}
	if len(unknown) > 0 {
		if top, err := st.UnknownMeters(ctx, 3); err != nil || len(top) != 3 || top[0] != unknown[0] {
			t.Errorf("limit 3: %v %v", top, err)
		}
	}
}

// TestBadInputReplay replays 100,000 CSV lines with 1% garbage of every kind
// and a broken quote at line 50,000, and the same messages as JSON Lines:
// rejects by field and rule equal the injected counts, and the broken quote
// costs its own line only.
func TestBadInputReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sp := dirtyTest

	t.Run("csv", func(t *testing.T) {
		st := testenv.Store(t)
		dir := t.TempDir()
		want := writeDirtyCSV(t, dir, sp)
		if want.Bad != sp.N/100+1 {
			t.Fatalf("generated %d bad lines, want %d", want.Bad, sp.N/100+1)
		}
		// Several inserts of several blocks each, as rigwatch replay writes.
		sum, err := ingest.Replay(ctx, ingest.ReplayConfig{Dir: dir, MaxLine: sp.Limit, BatchSize: 20_000,
			NewInserter: func() ingest.Inserter { return st.Inserter() }, InsertRows: 50_000}, st, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s := sum.Streams[0]; s.Accepted != int64(sp.N-want.Bad) || s.Rejected != int64(want.Bad) {
			t.Errorf("replay summary %+v, want %d accepted, %d rejected", s, sp.N-want.Bad, want.Bad)
		}
		checkStored(t, ctx, st, want)
		var line int64
		var reason string
		q := "SELECT line, reason FROM " + st.Database() + ".rejects FINAL WHERE line = ?"
		if err := st.Conn().QueryRow(ctx, q, int64(sp.QuoteLine)).Scan(&line, &reason); err != nil {
			t.Fatalf("no reject for the broken quote at line %d: %v", sp.QuoteLine, err)
		}
		t.Logf("line %d: %s", line, reason)
	})

	t.Run("jsonl", func(t *testing.T) {
		st := testenv.Store(t)
		dir := t.TempDir()
		msgs, want := dirtyMessages(sp)
		var buf bytes.Buffer
		for _, m := range msgs {
			if m.Value == nil { // a file has no null; count it out
				want.Rejects[" "+schemas.RuleMissing]--
				want.Bad--
				continue
			}
			buf.Write(m.Value)
			buf.WriteByte('\n')
		}
		if want.Rejects[" "+schemas.RuleMissing] == 0 {
			delete(want.Rejects, " "+schemas.RuleMissing)
		}
		if err := os.WriteFile(filepath.Join(dir, "readings.jsonl"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ingest.Replay(ctx, ingest.ReplayConfig{Dir: dir, MaxLine: sp.Limit, BatchSize: 20_000,
			NewInserter: func() ingest.Inserter { return st.Inserter() }, InsertRows: 50_000}, st, nil, nil); err != nil {
			t.Fatal(err)
		}
		checkStored(t, ctx, st, want)
	})
}

// TestBadInputLimit shows the size limit is configuration: the same 40 KiB
// reading is rejected for its size under a 32 KiB limit and stored under the
// default one, by the consumer and by replay.
func TestBadInputLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sp := dirtySpec{Meters: 1, Oversize: 40 << 10}
	v := oversizeJSON(sp, "M00000", "2025-10-01T00:15:00Z")
	br := testenv.Broker(t, "t.limit")
	produce(t, ctx, br.Addrs(), "t.limit", 0, []kafka.Message{{Key: []byte("M00000"), Value: v}})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "readings.jsonl"), append(v, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		limit    int
		rejected int64
	}{{32 << 10, 1}, {0, 0}} {
		st := testenv.Store(t)
		s, _ := consume(t, ctx, br.Addrs(), st, schemas.Readings, "t.limit", "g"+strconv.Itoa(c.limit), c.limit, nil, nil)
		if s.Rejected != c.rejected || s.Stored != 1-c.rejected {
			t.Errorf("consumer, limit %d: %+v, want %d rejected", c.limit, s, c.rejected)
		}
		sum, err := ingest.Replay(ctx, ingest.ReplayConfig{Dir: dir, MaxLine: c.limit}, st, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Streams[0].Rejected != c.rejected {
			t.Errorf("replay, limit %d: %+v, want %d rejected", c.limit, sum.Streams[0], c.rejected)
		}
		if got := rejectCounts(t, ctx, st, schemas.Readings); got[" size"] != 2*c.rejected {
			t.Errorf("limit %d: rejects %v, want %d for size", c.limit, got, 2*c.rejected)
		}
	}
}

// TestBadInputRejectNearLimit is the regression test of a stalled consumer:
// a message under the default 1 MiB limit but over about 675 KB that is
// rejected (here truncated JSON) made a rejects-topic message over the
// writer's 900,000-byte batch (the raw bytes base64-encoded), so
// PublishRejects failed on every retry and the consumer never stored or
// committed anything again.
func TestBadInputRejectNearLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := testenv.Store(t)
	br := testenv.Broker(t, "t.near", schemas.RejectsTopic)
	bad := oversizeJSON(dirtySpec{Oversize: 800_000}, "M00000", "2025-10-01T00:15:00Z")
	bad = bad[:len(bad)-2] // truncated: rejected for syntax, not size
	w := ingest.NewWriter(br.Addrs(), "t.near", nil)
	defer w.Close()
	for _, v := range [][]byte{bad, jsonReading("M00001", "2025-10-01T00:15:00Z", "2")} {
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	rejW := ingest.NewWriter(br.Addrs(), schemas.RejectsTopic, nil)
	defer rejW.Close()
	s, _ := consume(t, ctx, br.Addrs(), st, schemas.Readings, "t.near", "g", 0, ingest.KafkaRejects{W: rejW}, nil)
	if s.Rejected != 1 || s.Stored != 1 {
		t.Errorf("stats %+v, want 1 stored and 1 rejected", s)
	}
	var size int64
	var raw string
	if err := st.Conn().QueryRow(ctx, "SELECT raw_size, raw FROM "+st.Database()+".rejects FINAL").Scan(&size, &raw); err != nil {
		t.Fatal(err)
	}
	if size != int64(len(bad)) || len(raw) != len(bad) {
		t.Errorf("reject keeps %d of %d bytes (raw_size %d); the table should keep all of an input under the limit", len(raw), len(bad), size)
	}
}

// TestOversizeRejectDescribesWholeInput checks that the reject of an input
// over the limit, kept only by its head, still carries the size and the
// SHA-256 of all of it, from Kafka and from a replayed line.
func TestOversizeRejectDescribesWholeInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v := oversizeJSON(dirtySpec{Meters: 1, Oversize: 300 << 10}, "M00000", "2025-10-01T00:15:00Z")
	want := sha256.Sum256(v)
	br := testenv.Broker(t, "t.whole")
	produce(t, ctx, br.Addrs(), "t.whole", 0, []kafka.Message{{Key: []byte("M00000"), Value: v}})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "readings.jsonl"), append(v, '\r', '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	st := testenv.Store(t)
	const limit = 64 << 10
	consume(t, ctx, br.Addrs(), st, schemas.Readings, "t.whole", "g", limit, nil, nil)
	if _, err := ingest.Replay(ctx, ingest.ReplayConfig{Dir: dir, MaxLine: limit}, st, nil, nil); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Conn().Query(ctx, "SELECT source, raw_size, raw_sha256, length(raw) FROM "+st.Database()+".rejects FINAL ORDER BY source")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var src, sha string
		var size int64
		var kept uint64
		if err := rows.Scan(&src, &size, &sha, &kept); err != nil {
			t.Fatal(err)
		}
		n++
		// The raw bytes are kept whole up to the default message limit,
		// a replayed line's only up to its head.
		if size != int64(len(v)) || sha != hex.EncodeToString(want[:]) || kept == 0 || kept != uint64(len(v)) && kept > ingest.RawCut {
			t.Errorf("%s: raw_size %d, raw_sha256 %s, %d bytes kept; want %d, %x, all or at most %d", src, size, sha, kept, len(v), want, ingest.RawCut)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d rejects, want 2 (one from Kafka, one from the file)", n)
	}
}
