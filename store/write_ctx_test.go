package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestBatchContext: a batch's context ends with its caller's until
// detached, and never after, so clickhouse-go's Send cannot close a
// connection that has gone back to the pool.
func TestBatchContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	bctx, detach := batchContext(ctx)
	cancel()
	select {
	case <-bctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the batch's context did not end with its caller's before detach")
	}
	detach()

	ctx, cancel = context.WithCancel(context.Background())
	bctx, detach = batchContext(ctx)
	detach()
	cancel()
	select {
	case <-bctx.Done():
		t.Fatal("the batch's context ended with its caller's after detach")
	case <-time.After(100 * time.Millisecond):
	}
	if err := batchErr(ctx, errors.New("read: use of closed network connection")); !errors.Is(err, context.Canceled) {
		t.Errorf("batchErr after the caller's context ended: %v, want context.Canceled", err)
	}
	if err := batchErr(context.Background(), errors.New("x")); err.Error() != "x" {
		t.Errorf("batchErr with a live context: %v", err)
	}
}
