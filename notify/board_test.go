package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/notify"
	"github.com/rigwatch/rigwatch/schemas"
)

// TestEveryBoardSeesEveryChange: two processes' boards follow the alerts
// topic; a finding the detector emits on one, and a person's change
// announced on the other, reach both boards.
func TestEveryBoardSeesEveryChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := testenv.Store(t)
	brokers := testenv.Broker(t, schemas.AlertsTopic).Addrs()
	type proc struct {
		sink *notify.Sink
		bc   *notify.Broadcaster
		sub  <-chan schemas.Alert
		bd   *notify.Board
	}
	var ps []*proc
	for i := 0; i < 2; i++ {
		w := ingest.NewWriter(brokers, schemas.AlertsTopic, nil)
		defer w.Close()
		p := &proc{sink: &notify.Sink{Store: st, Topic: w}, bc: notify.NewBroadcaster(0)}
		p.sub, _ = p.bc.Subscribe()
		var err error
		if p.bd, err = notify.NewBoard(brokers, nil, schemas.AlertsTopic, p.bc, nil); err != nil {
			t.Fatal(err)
		}
		go func() { _ = p.bd.Run(ctx) }()
		ps = append(ps, p)
	}
	time.Sleep(time.Second) // the boards start at the topic's end
	expect := func(what, id, status string) {
		t.Helper()
		for i, p := range ps {
			deadline := time.After(10 * time.Second)
			for seen := false; !seen; {
				select {
				case a := <-p.sub:
					seen = a.AlertID == id && a.Status == status
				case <-deadline:
					t.Fatalf("%s: board %d never showed %s %s", what, i, id, status)
				}
			}
		}
	}
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	kwh := 2.5
	a := schemas.Alert{AlertID: "op-1", Kind: schemas.KindOversizedPurchase, Severity: schemas.SeverityWarning, EntityType: schemas.EntityPurchase,
		EntityID: "TX-1", TxID: "TX-1", WindowStart: t0, WindowEnd: t0, ExcessKWh: &kwh, Summary: "one lot of 2.5 MWh"}
	if err := ps[0].sink.Emit(ctx, []schemas.Alert{a}); err != nil {
		t.Fatal(err)
	}
	expect("emitted on the leader", "op-1", schemas.StatusOpen)
	acked, err := st.SetAlertStatus(ctx, "op-1", schemas.StatusAcknowledged, "crew sent", "op")
	if err != nil {
		t.Fatal(err)
	}
	if err := ps[1].sink.Announce(ctx, []schemas.Alert{acked}); err != nil {
		t.Fatal(err)
	}
	expect("acknowledged on the other", "op-1", schemas.StatusAcknowledged)
	if err := ps[0].sink.Close(ctx, []string{"op-1"}); err != nil {
		t.Fatal(err)
	}
	expect("closed on the leader", "op-1", schemas.StatusAcknowledged)
	if fin := ps[0].sink.Final(); len(fin) != 1 || !fin[0].Closed {
		t.Errorf("final state: %+v", fin)
	}
	for i, p := range ps {
		if err := p.bd.Ready(); err != nil {
			t.Errorf("board %d: %v", i, err)
		}
	}
}
