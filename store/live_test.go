package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// TestDetectorState: the latest snapshot saved comes back byte for byte
// (it is binary), the horizon is the last published, and marks noted
// since a time come back.
func TestDetectorState(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	if b, _, err := st.LoadDetectorState(ctx); err != nil || b != nil {
		t.Fatalf("empty store: state %v, %v", b, err)
	}
	if h, err := st.Horizon(ctx); err != nil || !h.IsZero() {
		t.Fatalf("empty store: horizon %v, %v", h, err)
	}
	t0 := time.Date(2025, 10, 1, 19, 0, 0, 0, time.UTC)
	snap := []byte{0, 1, 2, 0xff, 0xfe, '\n', 0}
	for i := range 3 {
		s := append(bytes.Clone(snap), byte(i))
		if err := st.SaveDetectorState(ctx, t0.Add(time.Duration(i)*time.Hour), s); err != nil {
			t.Fatal(err)
		}
		if err := st.PublishHorizon(ctx, t0.Add(time.Duration(3-i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	b, to, err := st.LoadDetectorState(ctx)
	if err != nil || !bytes.Equal(b, append(bytes.Clone(snap), 2)) || !to.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("state %v at %s (%v), want the last saved", b, to, err)
	}
	if h, err := st.Horizon(ctx); err != nil || !h.Equal(t0.Add(time.Hour)) {
		t.Fatalf("horizon %s (%v), want the last published %s", h, err, t0.Add(time.Hour))
	}
	before := time.Now().Add(-2 * time.Second)
	marks := []store.ReadingMark{{MeterID: "M1", TS: t0, IntervalS: 900}, {MeterID: "M2", TS: t0.Add(time.Hour), IntervalS: 1800}}
	if err := st.MarkReadings(ctx, marks); err != nil {
		t.Fatal(err)
	}
	got, err := st.ReadingMarksSince(ctx, before)
	if err != nil || len(got) != 2 {
		t.Fatalf("marks %v (%v), want 2", got, err)
	}
	for i, m := range got {
		if m.MeterID != marks[i].MeterID || !m.TS.Equal(marks[i].TS) || m.IntervalS != marks[i].IntervalS {
			t.Errorf("mark %d: %+v, want %+v", i, m, marks[i])
		}
	}
	if got, err := st.ReadingMarksSince(ctx, time.Now().Add(time.Hour)); err != nil || len(got) != 0 {
		t.Errorf("marks noted in an hour: %v (%v), want none", got, err)
	}
}

// TestHours: the detector's feeder and site hours come back at their latest
// version; a feeder's totals sum its hours in the window.
func TestHours(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	t0 := time.Date(2025, 10, 1, 19, 0, 0, 0, time.UTC)
	fh := func(id string, h int, head, meters float64, complete bool) schemas.FeederHour {
		return schemas.FeederHour{FeederID: id, Hour: t0.Add(time.Duration(h) * time.Hour), HeadKWh: head, MetersKWh: meters, Meters: 3, Complete: complete}
	}
	sh := schemas.SiteHour{SiteID: "S1", MeterID: "M1", Hour: t0, KWh: 90, CoveredS: 3600, CapacityKW: 100}
	if err := st.WriteHours(ctx, []schemas.FeederHour{fh("F1", 0, 10, 9, true), fh("F1", 1, 12, 5, false), fh("F2", 0, 3, 3, true)}, []schemas.SiteHour{sh}); err != nil {
		t.Fatal(err)
	}
	// A late reading completes F1's second hour; the site's capacity moved.
	sh.CapacityKW = 120
	if err := st.WriteHours(ctx, []schemas.FeederHour{fh("F1", 1, 12, 11, true)}, []schemas.SiteHour{sh}); err != nil {
		t.Fatal(err)
	}
	hs, err := st.FeederHours(ctx, []string{"F1"}, t0, t0.Add(2*time.Hour))
	if err != nil || len(hs) != 2 || hs[1].MetersKWh != 11 || !hs[1].Complete || hs[0].HeadKWh != 10 {
		t.Fatalf("F1 hours %+v (%v), want the second rewritten", hs, err)
	}
	tot, err := st.FeederTotals(ctx, t0, t0.Add(2*time.Hour))
	if err != nil || tot["F1"] != (store.FeederTotal{HeadKWh: 22, MetersKWh: 20, Hours: 2, Complete: 2, Meters: 3}) || tot["F2"].HeadKWh != 3 {
		t.Fatalf("totals %+v (%v)", tot, err)
	}
	if tot, _ := st.FeederTotals(ctx, t0.Add(time.Hour), t0.Add(2*time.Hour)); tot["F1"].HeadKWh != 12 || len(tot) != 1 {
		t.Errorf("totals of the second hour %+v, want F1's 12 kWh only", tot)
	}

	// The span the hours cover: where the detector started afresh, up to
	// the last hour it stored; a continuing evaluation moves the end only.
	if f, to, err := st.HoursSpan(ctx); err != nil || !f.IsZero() || !to.IsZero() {
		t.Fatalf("span before any: %s..%s (%v)", f, to, err)
	}
	if err := st.PublishHours(ctx, t0.Add(-24*time.Hour), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.PublishHours(ctx, time.Time{}, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if f, to, err := st.HoursSpan(ctx); err != nil || !f.Equal(t0.Add(-24*time.Hour)) || !to.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("span %s..%s (%v), want %s..%s", f, to, err, t0.Add(-24*time.Hour), t0.Add(2*time.Hour))
	}
	ss, err := st.SiteHours(ctx, []string{"S1"}, t0, t0.Add(time.Hour))
	if err != nil || len(ss) != 1 || ss[0] != sh {
		t.Fatalf("site hours %+v (%v), want %+v", ss, err, sh)
	}
}

// TestReadingSpan: the span of readings comes from the parts' index, equal
// to the table's own min and max, zero when there are none, and an error
// when the table is not there (a detector must not take that for no data).
func TestReadingSpan(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	if from, to, err := st.ReadingSpan(ctx); err != nil || !from.IsZero() || !to.IsZero() {
		t.Fatalf("empty store: %s..%s (%v)", from, to, err)
	}
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	for _, ts := range [][]int{{1, 5}, {3, 9}} { // two inserts, two parts
		b := &schemas.Batch{}
		for _, i := range ts {
			b.Readings = append(b.Readings, schemas.Reading{MeterID: "M1", TS: t0.Add(time.Duration(i) * 15 * time.Minute), KWh: 1, IntervalS: 900, Meta: schemas.Meta{Version: uint64(i)}})
		}
		if err := st.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	from, to, err := st.ReadingSpan(ctx)
	if err != nil || !from.Equal(t0.Add(15*time.Minute)) || !to.Equal(t0.Add(9*15*time.Minute)) {
		t.Fatalf("span %s..%s (%v), want %s..%s", from, to, err, t0.Add(15*time.Minute), t0.Add(9*15*time.Minute))
	}
	if err := st.Conn().Exec(ctx, "RENAME TABLE "+st.Database()+".readings TO "+st.Database()+".readings_away"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.ReadingSpan(ctx); err == nil {
		t.Error("no error with the readings table gone")
	}
}

// TestMeterReadingsLatest: a short span (read unmerged, sorted) and a long
// one (read with FINAL) both give each reading's latest version only,
// whatever part and order its versions were written in: duplicates,
// corrections of the value and of the interval, and a correction written
// before the value it replaces (a lower version arriving later).
func TestMeterReadingsLatest(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	type key struct {
		id string
		ts time.Time
	}
	type val struct {
		kwh float64
		iv  int32
		ver uint64
	}
	want := map[key]val{}
	var ver uint64
	var batches []*schemas.Batch
	for b := range 6 {
		batch := &schemas.Batch{}
		for _, id := range []string{"M1", "M2", "M3"} {
			for q := range 48 { // 12 hours at 15 minutes
				if (q+b)%3 != 0 && b > 0 {
					continue // later batches write again a third of them
				}
				ver++
				k := key{id, t0.Add(time.Duration(q+1) * 15 * time.Minute)}
				v := val{float64(b*100 + q), 900, ver}
				if b == 3 {
					v.iv = 600 // an interval corrected
				}
				if b == 4 {
					v.ver = ver - 1000 // delivered late, older than what is stored
				}
				batch.Readings = append(batch.Readings, schemas.Reading{MeterID: k.id, TS: k.ts, KWh: v.kwh, IntervalS: v.iv, Meta: schemas.Meta{Version: v.ver}})
				if w, ok := want[k]; !ok || v.ver > w.ver {
					want[k] = v
				}
			}
		}
		batches = append(batches, batch)
	}
	batches = append(batches, batches[2]) // redelivered whole: same versions
	for _, b := range batches {
		if err := st.WriteBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, span := range []struct{ from, to time.Time }{
		{t0.Add(2 * time.Hour), t0.Add(4 * time.Hour)},    // unmerged
		{t0.Add(-24 * time.Hour), t0.Add(12 * time.Hour)}, // FINAL
	} {
		got := map[key]val{}
		err := st.MeterReadings(ctx, span.from, span.to, func(id string, ts []time.Time, kwh []float64, iv []int32) error {
			for i := range ts {
				k := key{id, ts[i]}
				if _, dup := got[k]; dup {
					t.Errorf("%s %s came twice", id, ts[i])
				}
				if i > 0 && !ts[i].After(ts[i-1]) {
					t.Errorf("%s: %s after %s", id, ts[i], ts[i-1])
				}
				got[k] = val{kwh[i], iv[i], 0}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for k, w := range want {
			if !k.ts.After(span.from) || k.ts.After(span.to) {
				continue
			}
			n++
			if g, ok := got[k]; !ok || g.kwh != w.kwh || g.iv != w.iv {
				t.Errorf("%s..%s: %s at %s is %v (%v), want %v kWh over %d s", span.from, span.to, k.id, k.ts, g, ok, w.kwh, w.iv)
			}
		}
		if len(got) != n {
			t.Errorf("%s..%s: %d readings, want %d", span.from, span.to, len(got), n)
		}
	}
}
