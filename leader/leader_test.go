package leader_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/leader"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func newElector(t *testing.T, brokers []string, group string) *leader.Elector {
	t.Helper()
	e, err := leader.New(leader.Config{Brokers: brokers, GroupID: group, SessionTimeout: 6 * time.Second, Grace: 500 * time.Millisecond}, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// TestOneLeaderAndHandOver: of two electors exactly one leads; when it
// stops, the other takes over, and the first's term has ended by then.
func TestOneLeaderAndHandOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := testenv.Broker(t).Addrs()
	var running atomic.Int32 // terms in progress, over both electors
	var overlap atomic.Bool
	lead := func(ctx context.Context) error {
		if running.Add(1) > 1 {
			overlap.Store(true)
		}
		<-ctx.Done()
		running.Add(-1)
		return ctx.Err()
	}
	es := []*leader.Elector{newElector(t, brokers, "g1"), newElector(t, brokers, "g1")}
	ctxs := make([]context.CancelFunc, 2)
	done := make([]chan error, 2)
	for i, e := range es {
		c, stop := context.WithCancel(ctx)
		ctxs[i], done[i] = stop, make(chan error, 1)
		go func() { done[i] <- e.Run(c, lead) }()
	}
	if !waitFor(time.Minute, func() bool { return es[0].Leading() != es[1].Leading() }) {
		t.Fatalf("leading: %v, %v; want exactly one", es[0].Leading(), es[1].Leading())
	}
	// Both have joined once one leads for a while with the other in the
	// group.
	time.Sleep(2 * time.Second)
	if es[0].Leading() == es[1].Leading() {
		t.Fatalf("leading: %v, %v; want exactly one", es[0].Leading(), es[1].Leading())
	}
	first := 0
	if es[1].Leading() {
		first = 1
	}
	ctxs[first]()
	if err := <-done[first]; err != nil {
		t.Fatalf("Run after its context ended: %v", err)
	}
	if !waitFor(time.Minute, func() bool { return es[1-first].Leading() }) {
		t.Fatal("the survivor never took over")
	}
	if overlap.Load() {
		t.Error("two terms ran at once")
	}
	for _, e := range es {
		if err := e.Ready(); err != nil {
			t.Errorf("Ready: %v", err)
		}
	}
	ctxs[1-first]()
	if err := <-done[1-first]; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestLeadFailureEndsRun: a task that fails, or stops by itself, while its
// process leads ends Run with the reason.
func TestLeadFailureEndsRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := testenv.Broker(t).Addrs()
	boom := errors.New("cannot start detection: boom")
	for _, c := range []struct {
		group string
		ret   error
		want  error
	}{{"g-fail", boom, boom}, {"g-nil", nil, leader.ErrLeadEnded}} {
		e := newElector(t, brokers, c.group)
		err := e.Run(ctx, func(context.Context) error { return c.ret })
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Run = %v, want %v", c.group, err, c.want)
		}
		if e.Leading() {
			t.Errorf("%s: still leading after Run returned", c.group)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []leader.Config{{GroupID: "g"}, {Brokers: []string{"127.0.0.1:1"}}} {
		if _, err := leader.New(c, nil); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestRefusedForGood: a group the brokers refuse for good (not authorised)
// ends Run with the reason; one that only fails for now is retried and
// reported by Ready.
func TestRefusedForGood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	br := testenv.Broker(t)
	var refusals atomic.Int32
	br.Cluster().ControlKey(kmsg.JoinGroup.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		br.Cluster().KeepControl()
		r := req.(*kmsg.JoinGroupRequest)
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		switch {
		case r.Group == "g-denied":
			resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case r.Group == "g-busy" && refusals.Add(1) <= 3:
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		default:
			return nil, nil, false
		}
		return resp, nil, true
	})
	e := newElector(t, br.Addrs(), "g-denied")
	err := e.Run(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil })
	if !errors.Is(err, kafka.GroupAuthorizationFailed) {
		t.Errorf("Run = %v, want a group authorisation failure", err)
	}

	e = newElector(t, br.Addrs(), "g-busy")
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(rctx, func(ctx context.Context) error { <-ctx.Done(); return nil }) }()
	sawNotReady := waitFor(30*time.Second, func() bool { return e.Ready() != nil })
	if !waitFor(30*time.Second, e.Leading) {
		t.Fatal("never led after the coordinator came back")
	}
	if !sawNotReady {
		t.Error("Ready never reported the refused joins")
	}
	if err := e.Ready(); err != nil {
		t.Errorf("Ready after joining: %v", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
