package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// TestServeSurvivesSIGKILL produces a few hundred thousand readings (with
// duplicates and corrections) into the broker while a rigwatch serve process
// is killed with SIGKILL and restarted twice. Afterwards the stored distinct
// readings and every meter's energy equal what was produced, to the reading.
func TestServeSurvivesSIGKILL(t *testing.T) {
	bin := binary(t)
	ch := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	br := testenv.Broker(t, allTopics()...)
	brokers := br.Addrs()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	const meters, steps = 500, 600 // 300,000 distinct readings
	want := map[string]float64{}
	produced := make(chan error, 1)
	go func() {
		w := ingest.NewWriter(brokers, schemas.Readings.Topic(), nil)
		defer w.Close()
		rng := rand.New(rand.NewSource(1))
		start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
		var msgs []kafka.Message
		var n int
		for s := 0; s < steps; s++ {
			ts := start.Add(time.Duration(s+1) * 15 * time.Minute).Format(time.RFC3339)
			for m := 0; m < meters; m++ {
				id := fmt.Sprintf("M%04d", m)
				kwh := float64(rng.Intn(10000)) / 1000
				v, _ := json.Marshal(map[string]any{"meter_id": id, "ts": ts, "kwh": kwh})
				msgs = append(msgs, kafka.Message{Key: []byte(id), Value: v})
				switch rng.Intn(20) {
				case 0: // duplicate
					msgs = append(msgs, kafka.Message{Key: []byte(id), Value: v})
				case 1: // correction: the later value counts
					kwh = float64(rng.Intn(10000)) / 1000
					v, _ = json.Marshal(map[string]any{"meter_id": id, "ts": ts, "kwh": kwh})
					msgs = append(msgs, kafka.Message{Key: []byte(id), Value: v})
				}
				want[id] += kwh
				n++
			}
			if len(msgs) >= 10000 || s == steps-1 {
				if err := w.WriteMessages(ctx, msgs...); err != nil {
					produced <- err
					return
				}
				msgs = msgs[:0]
				// Spread production over the kills.
				time.Sleep(40 * time.Millisecond)
			}
		}
		produced <- nil
	}()

	logs := t.TempDir()
	start := func(i int) *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--kafka", brokers[0], "--clickhouse", ch, "--clickhouse-database", db,
			"--http", "127.0.0.1:0", "--flush-interval", "300ms", "--batch-size", "20000", "--data-dir", t.TempDir())
		f, err := os.Create(filepath.Join(logs, fmt.Sprintf("serve-%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	st, err := store.Open(ctx, store.Config{Addr: ch, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var stored uint64
	for i := 0; i < 2; i++ {
		cmd := start(i)
		// Kill each process once it has stored something of its own, so
		// that every kill lands mid-ingest.
		for {
			tot, err := st.ReadingTotals(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tot.Rows > stored {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("serve %d stored nothing; logs in %s", i, logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Duration(200+300*i) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		// The kill must land mid-ingest for the test to mean anything.
		tot, err := st.ReadingTotals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("killed serve %d with %d readings stored", i, tot.Rows)
		stored = tot.Rows
		if tot.Rows == 0 || tot.Rows >= meters*steps {
			t.Errorf("kill %d did not land mid-ingest: %d of %d readings stored", i, tot.Rows, meters*steps)
		}
	}
	cmd := start(2)
	if err := <-produced; err != nil {
		t.Fatalf("cannot produce: %v", err)
	}
	for {
		lag, err := ingest.GroupLag(ctx, brokers, nil, "rigwatch.readings", schemas.Readings.Topic())
		if err == nil && lag == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("serve did not catch up (lag %d, %v); logs in %s", lag, err, logs)
		}
		time.Sleep(300 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve did not exit cleanly on SIGTERM: %v", err)
	}

	tot, err := st.ReadingTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tot.Rows != meters*steps || tot.Meters != meters {
		t.Errorf("stored %d distinct readings of %d meters, want %d of %d", tot.Rows, tot.Meters, meters*steps, meters)
	}
	got, err := st.MeterEnergy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for id, kwh := range want {
		if got[id].Rows != steps || fmt.Sprintf("%.3f", got[id].KWh) != fmt.Sprintf("%.3f", kwh) {
			bad++
			if bad <= 5 {
				t.Errorf("%s: stored %d readings, %.3f kWh; produced %d, %.3f kWh", id, got[id].Rows, got[id].KWh, steps, kwh)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d meters differ", bad, meters)
	}
}
