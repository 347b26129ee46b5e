package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// load describes readings a test produces: meters × steps distinct
// readings, about 5% duplicated and 5% corrected, written in chunks with a
// pause between them so that production overlaps what the test breaks.
type load struct {
	meters, steps int
	seed          int64
	pause         time.Duration
}

// produce writes the load to the readings topic and returns what must end
// up stored: each meter's energy at the final values.
func produce(ctx context.Context, brokers []string, l load) (map[string]float64, error) {
	w := ingest.NewWriter(brokers, schemas.Readings.Topic(), nil)
	defer w.Close()
	rng := rand.New(rand.NewSource(l.seed))
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	want := map[string]float64{}
	var msgs []kafka.Message
	for s := 0; s < l.steps; s++ {
		ts := start.Add(time.Duration(s+1) * 15 * time.Minute).Format(time.RFC3339)
		for m := 0; m < l.meters; m++ {
			id := fmt.Sprintf("M%05d", m)
			kwh := float64(rng.Intn(10000)) / 1000
			v, _ := json.Marshal(map[string]any{"meter_id": id, "ts": ts, "kwh": kwh})
			msgs = append(msgs, kafka.Message{Key: []byte(id), Value: v})
			switch rng.Intn(20) {
			case 0:
				msgs = append(msgs, kafka.Message{Key: []byte(id), Value: v})
			case 1:
				kwh = float64(rng.Intn(10000)) / 1000
				v, _ = json.Marshal(map[string]any{"meter_id": id, "ts": ts, "kwh": kwh})
				msgs = append(msgs, kafka.Message{Key: []byte(id), Value: v})
			}
			want[id] += kwh
		}
		if len(msgs) >= 10000 || s == l.steps-1 {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return nil, err
			}
			msgs = msgs[:0]
			time.Sleep(l.pause)
		}
	}
	return want, nil
}

// soak reports whether make soak asked for the long versions of the
// reliability tests (RIGWATCH_SOAK=1); make test runs them at small scale.
func soak() bool { return os.Getenv("RIGWATCH_SOAK") != "" }

// proc is a rigwatch serve process under test.
type proc struct {
	cmd  *exec.Cmd
	http string
	log  string
	done chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe starts rigwatch serve against the given broker and ClickHouse.
func startServe(t *testing.T, brokers []string, ch, db, name string, extra ...string) *proc {
	t.Helper()
	p := &proc{http: freeAddr(t), log: filepath.Join(t.TempDir(), name+".log"), done: make(chan error, 1)}
	args := append([]string{"serve", "--kafka", strings.Join(brokers, ","), "--clickhouse", ch, "--clickhouse-database", db,
		"--http", p.http, "--flush-interval", "300ms", "--batch-size", "20000", "--data-dir", t.TempDir()}, extra...)
	p.cmd = exec.Command(binary(t), args...)
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); f.Close() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s log tail:\n%s", name, b)
		}
	})
	return p
}

// status returns the HTTP status of a GET, or 0 when nothing answers.
func (p *proc) status(path string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.http + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// body returns the body of a GET, or the error.
func (p *proc) body(path string) string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.http + path)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

func (p *proc) alive() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

// waitFor polls cond every 100ms until it holds or d passes.
var waitFor = testenv.WaitFor

// caughtUp waits until the readings group has committed everything.
func caughtUp(t *testing.T, ctx context.Context, brokers []string) {
	t.Helper()
	if !waitFor(3*time.Minute, func() bool {
		lag, err := ingest.GroupLag(ctx, brokers, nil, "rigwatch.readings", schemas.Readings.Topic())
		return err == nil && lag == 0
	}) {
		t.Fatal("serve did not catch up with the topic")
	}
}

// committed returns the readings group's committed offset per partition.
func committed(ctx context.Context, brokers []string) (ingest.Offsets, error) {
	return ingest.CommittedOffsets(ctx, brokers, nil, "rigwatch.readings", schemas.Readings.Topic(), []int{0, 1, 2, 3, 4, 5})
}

// checkStored compares what is stored with what was produced, to the
// reading.
func checkStored(t *testing.T, ctx context.Context, st *store.Store, want map[string]float64, steps int) {
	t.Helper()
	tot, err := st.ReadingTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tot.Rows != uint64(len(want)*steps) || tot.Meters != uint64(len(want)) {
		t.Errorf("stored %d distinct readings of %d meters, want %d of %d", tot.Rows, tot.Meters, len(want)*steps, len(want))
	}
	got, err := st.MeterEnergy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for id, kwh := range want {
		if got[id].Rows != uint64(steps) || fmt.Sprintf("%.3f", got[id].KWh) != fmt.Sprintf("%.3f", kwh) {
			if bad++; bad <= 5 {
				t.Errorf("%s: stored %d readings, %.3f kWh; produced %d, %.3f kWh", id, got[id].Rows, got[id].KWh, steps, kwh)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d meters differ", bad, len(want))
	}
}

func sigterm(p *proc) { _ = p.cmd.Process.Signal(syscall.SIGTERM) }

func kafkaMsg(key string, value []byte) kafka.Message {
	return kafka.Message{Key: []byte(key), Value: value}
}

// logHas reports whether the process's log holds s.
func logHas(p *proc, s string) bool {
	b, err := os.ReadFile(p.log)
	return err == nil && strings.Contains(string(b), s)
}

// settled reports whether every consumer group of rigwatch (the five input
// streams and detection) is stable with exactly members members. Tests kill
// serve only then: kfake never expires a member that died while waiting in
// JoinGroup (its reply to the dead connection is what would arm the session
// timer), so a kill mid-join would strand that member's partitions for good.
// Real Kafka expires it after the session timeout.
func settled(ctx context.Context, brokers []string, members int) bool {
	ids := []string{"rigwatch.detect"}
	for _, s := range schemas.Streams {
		ids = append(ids, "rigwatch."+string(s))
	}
	dg, err := (&kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}).DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: ids})
	if err != nil || len(dg.Groups) != len(ids) {
		return false
	}
	for _, g := range dg.Groups {
		if g.Error != nil || g.GroupState != "Stable" || len(g.Members) != members {
			return false
		}
	}
	return true
}
