package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/internal/testenv"
	"github.com/rigwatch/rigwatch/schemas"
	"github.com/rigwatch/rigwatch/store"
)

// joining reports whether a consumer group of rigwatch has members members
// and is rebalancing: some are waiting in JoinGroup.
func joining(ctx context.Context, brokers []string, members int) bool {
	ids := []string{"rigwatch.detect"}
	for _, s := range schemas.Streams {
		ids = append(ids, "rigwatch."+string(s))
	}
	dg, err := (&kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 2 * time.Second}).DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: ids})
	if err != nil {
		return false
	}
	for _, g := range dg.Groups {
		if g.Error == nil && g.GroupState == "PreparingRebalance" && len(g.Members) == members {
			return true
		}
	}
	return false
}

// TestServesShareBrokerCluster runs three serve processes in one consumer
// group against three brokers while readings pour in. The third is
// SIGKILLed while its consumer groups are joining (the case kfake's patched
// copy fixes: third_party/kfake), then partition leaders move to other
// brokers and one broker is removed. The two survivors take over every
// partition: nothing is lost and nothing counts twice.
func TestServesShareBrokerCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	ch := testenv.ClickHouseAddr(t)
	db := testenv.DatabaseName()
	br := testenv.BrokerCluster(t, 3, allTopics()...)
	brokers := br.Addrs()
	if len(brokers) != 3 {
		t.Fatalf("%d brokers, want 3", len(brokers))
	}
	l := load{meters: 300, steps: 400, seed: 9, pause: 4 * time.Second} // about a minute
	prod := produceAsync(ctx, brokers, l)
	a := startServe(t, brokers, ch, db, "serve-a")
	b := startServe(t, brokers, ch, db, "serve-b")
	st, err := store.Open(ctx, store.Config{Addr: ch, Database: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !waitFor(time.Minute, func() bool { return settled(ctx, brokers, 2) }) {
		t.Fatal("the two processes' consumer groups never settled")
	}
	c := startServe(t, brokers, ch, db, "serve-c")
	end := time.Now().Add(time.Minute)
	for !joining(ctx, brokers, 3) {
		if time.Now().After(end) {
			t.Fatal("the third process never joined a group")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	killed := time.Now()
	t.Log("killed the third process while its groups were joining")

	time.Sleep(3 * time.Second)
	br.Cluster().ShufflePartitionLeaders()
	time.Sleep(3 * time.Second)
	if err := br.Cluster().RemoveNode(2); err != nil {
		t.Fatal(err)
	}
	t.Log("moved the partition leaders and removed broker 2")
	res := <-prod
	if res.err != nil {
		t.Fatal(res.err)
	}
	live := brokers[:2]
	caughtUp(t, ctx, live)
	t.Logf("caught up %.1fs after the kill", time.Since(killed).Seconds())
	if !waitFor(time.Minute, func() bool { return settled(ctx, live, 2) }) {
		t.Error("the killed process never left its groups")
	}
	for _, p := range []*proc{a, b} {
		if !p.alive() {
			t.Fatalf("a surviving serve exited")
		}
		sigterm(p)
		if err := <-p.done; err != nil {
			t.Errorf("serve exit: %v", err)
		}
	}
	checkStored(t, ctx, st, res.want, l.steps)
}
