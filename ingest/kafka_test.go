package ingest_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/rigwatch/rigwatch/ingest"
	"github.com/rigwatch/rigwatch/internal/localkafka"
)

// TestOffsetHelpersLeaveNothing: GroupLag (EndOffsets, then Behind), which
// serve's detection barrier and every drain loop call over and over,
// leaves no goroutine behind. Each call used to leave a kafka-go Transport
// whose pool refreshed its metadata every few seconds for good: a 20 ms
// poll for a minute left 3,000 of them, all asking the broker.
func TestOffsetHelpersLeaveNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	br, err := localkafka.Start("", 0, "t.offsets")
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	if _, err := ingest.GroupLag(ctx, br.Addrs(), nil, "g", "t.offsets"); err != nil {
		t.Fatal(err)
	}
	settle := func() int {
		// Closed connections' goroutines end soon after.
		n := runtime.NumGoroutine()
		for i := 0; i < 50; i++ {
			time.Sleep(20 * time.Millisecond)
			n = min(n, runtime.NumGoroutine())
		}
		return n
	}
	before := settle()
	const calls = 40
	for i := 0; i < calls; i++ {
		if _, err := ingest.GroupLag(ctx, br.Addrs(), nil, "g", "t.offsets"); err != nil {
			t.Fatal(err)
		}
	}
	if after := settle(); after-before >= calls/2 {
		t.Errorf("%d calls of GroupLag left %d goroutines behind (%d before, %d after)", calls, after-before, before, after)
	}
}
