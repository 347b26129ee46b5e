package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/investigate"
	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/sim"
	"github.com/rigwatch/rigwatch/store"
)

// TestPagesFromHours streams a scenario through serve and, once live
// detection has moved well past one of its hours, delivers every reading
// of that hour again and corrects one in seven of them. The feeder
// ranking and every feeder, site and operator page read from the hours
// the detector stored then equal the same pages read from raw readings:
// the stored hours stay exact under redelivery and corrections.
func TestPagesFromHours(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s, err := sim.New(sim.Config{Seed: 5, Feeders: 4, Days: 3})
	if err != nil {
		t.Fatal(err)
	}
	ch := testenv.ClickHouseAddr(t)
	brokers := testenv.Broker(t, allTopics()...).Addrs()
	db := testenv.DatabaseName()
	const streamFor = 40.0
	speed := float64(s.Steps()) * s.Interval().Seconds() / streamFor
	str := &streamer{rt: &runtime{brokers: brokers, log: zap.NewNop()}, s: s, speed: speed, log: zap.NewNop()}
	p := startServe(t, brokers, ch, db, "serve", "--detect-every", "300ms")
	streamed := make(chan error, 1)
	go func() { streamed <- str.run(ctx) }()

	st, err := store.Open(ctx, store.Config{Addr: ch, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pages := func() (hours, raw *investigate.Queries) {
		ix, err := registry.New(registry.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.LoadRegistry(ctx, ix); err != nil {
			t.Fatal(err)
		}
		q := &investigate.Queries{Store: st, Registry: ix, TariffKZTPerKWh: 30, Location: schemas.Local}
		r := *q
		r.Raw = true
		return q, &r
	}

	// The hour (hour, hour+1h] of the first day, once detection is six
	// hours past it.
	hour := s.Start().Add(10 * time.Hour)
	if !waitFor(3*time.Minute, func() bool {
		return metric(p.http, "rigwatch_detect_event_time_seconds") >= float64(hour.Add(6*time.Hour).Unix())
	}) {
		t.Fatal("live detection never got six hours past the hour to correct")
	}
	_, raw := pages()
	feeder := raw.Registry.Feeders()[0]
	before, err := raw.Feeder(ctx, feeder, hour, hour.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	var buf []schemas.Reading
	first := int(hour.Sub(s.Start()) / s.Interval())
	corrected := 0
	for step := first; step < first+int(time.Hour/s.Interval()); step++ {
		buf = s.ReadingsAt(step, buf)
		for i, r := range buf {
			if i%7 == 0 {
				r.KWh += 5
				corrected++
			}
			v, _ := json.Marshal(r)
			msgs = append(msgs, kafka.Message{Key: []byte(r.MeterID), Value: v})
		}
	}
	w := ingest.NewWriter(brokers, schemas.Readings.Topic(), nil)
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("delivered the %d readings of %s again, %d of them corrected", len(msgs), hour.Add(time.Hour).Format(time.RFC3339), corrected)

	if err := <-streamed; err != nil {
		t.Fatalf("stream: %v", err)
	}
	caughtUp(t, ctx, brokers)
	upTo := hourBefore(s.End().Add(-15 * time.Minute))
	if !waitFor(3*time.Minute, func() bool {
		return metric(p.http, "rigwatch_detect_event_time_seconds") >= float64(upTo.Unix())
	}) {
		t.Fatalf("live detection never reached %s", upTo)
	}
	if marked := metric(p.http, "rigwatch_ingest_readings_marked_late_total"); marked < float64(len(msgs)) {
		t.Errorf("ingest marked %.0f readings stored behind the detector, want at least the %d delivered again", marked, len(msgs))
	}
	sigterm(p)
	<-p.done

	hf, ht, err := st.HoursSpan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	from, to := s.Start(), upTo
	if hf.After(from) || ht.Before(to) {
		t.Fatalf("the stored hours cover %s..%s, not the window %s..%s", hf, ht, from, to)
	}
	hq, rq := pages()
	after, err := rq.Feeder(ctx, feeder, hour, hour.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if near(before.MetersKWh, after.MetersKWh) && near(before.HeadKWh, after.HeadKWh) {
		t.Fatalf("the corrections did not change feeder %s's hour (%.3f kWh metered): nothing to check", feeder, after.MetersKWh)
	}

	check := func(what string, a, b float64) {
		t.Helper()
		if !near(a, b) {
			t.Errorf("%s: %.3f from the stored hours, %.3f from raw readings", what, a, b)
		}
	}
	hr, err := hq.FeederRanking(ctx, from, to, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	rr, err := rq.FeederRanking(ctx, from, to, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(hr.Top) != len(rr.Top) || len(hr.Top) == 0 {
		t.Fatalf("ranking: %d feeders from the stored hours, %d from raw readings", len(hr.Top), len(rr.Top))
	}
	for i := range hr.Top {
		h, r := hr.Top[i], rr.Top[i]
		if h.FeederID != r.FeederID {
			t.Errorf("ranking place %d: %s from the stored hours, %s from raw readings", i+1, h.FeederID, r.FeederID)
			continue
		}
		check("ranking "+h.FeederID+" head", h.HeadKWh, r.HeadKWh)
		check("ranking "+h.FeederID+" meters", h.MetersKWh, r.MetersKWh)
		check("ranking "+h.FeederID+" beyond", h.BeyondLossKWh, r.BeyondLossKWh)
	}
	for _, fid := range hq.Registry.Feeders() {
		h, err := hq.Feeder(ctx, fid, from, to)
		if err != nil {
			t.Fatal(err)
		}
		r, err := rq.Feeder(ctx, fid, from, to)
		if err != nil {
			t.Fatal(err)
		}
		check("feeder "+fid+" head", h.HeadKWh, r.HeadKWh)
		check("feeder "+fid+" meters", h.MetersKWh, r.MetersKWh)
		check("feeder "+fid+" beyond", h.BeyondLossKWh, r.BeyondLossKWh)
		if len(h.Hourly) != len(r.Hourly) {
			t.Errorf("feeder %s: %d hours from the stored hours, %d from raw readings", fid, len(h.Hourly), len(r.Hourly))
			continue
		}
		for i := range h.Hourly {
			what := fmt.Sprintf("feeder %s at %s", fid, h.Hourly[i].Hour.Format(time.RFC3339))
			check(what+" head", h.Hourly[i].HeadKWh, r.Hourly[i].HeadKWh)
			check(what+" meters", h.Hourly[i].MetersKWh, r.Hourly[i].MetersKWh)
		}
	}
	ops := map[string]bool{}
	sites := 0
	for _, sid := range hq.Registry.Sites() {
		h, err := hq.Site(ctx, sid, from, to)
		if err != nil {
			t.Fatal(err)
		}
		r, err := rq.Site(ctx, sid, from, to)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range h.Operators {
			ops[o] = true
		}
		sites++
		checkDays(t, "site "+sid, h.Daily, r.Daily)
		if len(h.Hourly) != len(r.Hourly) {
			t.Errorf("site %s: %d hours from the stored hours, %d from raw readings", sid, len(h.Hourly), len(r.Hourly))
			continue
		}
		for i := range h.Hourly {
			check(fmt.Sprintf("site %s at %s", sid, h.Hourly[i].Hour.Format(time.RFC3339)), h.Hourly[i].MeteredKW, r.Hourly[i].MeteredKW)
		}
	}
	for o := range ops {
		h, err := hq.Operator(ctx, o, from, to)
		if err != nil {
			t.Fatal(err)
		}
		r, err := rq.Operator(ctx, o, from, to)
		if err != nil {
			t.Fatal(err)
		}
		checkDays(t, "operator "+o, h.Daily, r.Daily)
		for i := range h.Sites {
			check("operator "+o+" site "+h.Sites[i].SiteID, h.Sites[i].ConsumedKWh, r.Sites[i].ConsumedKWh)
		}
	}
	if sites == 0 || len(ops) == 0 {
		t.Fatalf("the scenario has %d sites and %d operators: nothing compared", sites, len(ops))
	}
	t.Logf("ranking of %d feeders, %d feeder, %d site and %d operator pages equal from stored hours and raw readings",
		len(hr.Top), len(hq.Registry.Feeders()), sites, len(ops))
}

func checkDays(t *testing.T, what string, h, r []investigate.EnergyDay) {
	t.Helper()
	if len(h) != len(r) {
		t.Errorf("%s: %d days from the stored hours, %d from raw readings", what, len(h), len(r))
		return
	}
	for i := range h {
		if h[i].Day != r[i].Day || !near(h[i].ConsumedKWh, r[i].ConsumedKWh) {
			t.Errorf("%s on %s: %.3f kWh from the stored hours, %.3f (%s) from raw readings", what, h[i].Day, h[i].ConsumedKWh, r[i].ConsumedKWh, r[i].Day)
		}
	}
}

// near reports whether two energies agree within what the detector's
// single-precision hours and the pages' rounding allow.
func near(a, b float64) bool { return math.Abs(a-b) <= 0.01+1e-5*math.Max(math.Abs(a), math.Abs(b)) }
