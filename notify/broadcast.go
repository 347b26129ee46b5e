package notify

import (
	"sync"
	"sync/atomic"

	"github.com/rigwatch/rigwatch/schemas"
)

// Broadcaster hands new and updated alerts to everything in this process
// that shows or forwards them as they change: the API's SSE streams, the
// Alertmanager client. In serve a Board publishes every change made by any
// process; a slow subscriber loses alerts rather than slowing the
// publisher (Dropped counts them). It is safe for concurrent use; the zero
// value is not: use NewBroadcaster.
type Broadcaster struct {
	mu      sync.Mutex
	subs    map[chan schemas.Alert]struct{}
	buf     int
	dropped atomic.Int64
}

// NewBroadcaster returns a broadcaster whose subscribers each buffer up to
// buf alerts (zero means 256).
func NewBroadcaster(buf int) *Broadcaster {
	if buf <= 0 {
		buf = 256
	}
	return &Broadcaster{subs: map[chan schemas.Alert]struct{}{}, buf: buf}
}

// Publish sends alerts to every subscriber without blocking.
func (b *Broadcaster) Publish(alerts []schemas.Alert) {
	if b == nil || len(alerts) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		for i := range alerts {
			select {
			case ch <- alerts[i]:
			default:
				b.dropped.Add(1)
			}
		}
	}
}

// Subscribe returns a channel of published alerts and a function that ends
// the subscription (safe to call twice).
func (b *Broadcaster) Subscribe() (<-chan schemas.Alert, func()) {
	ch := make(chan schemas.Alert, b.buf)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, ch)
			b.mu.Unlock()
		})
	}
}

// Subscribers returns the number of open subscriptions.
func (b *Broadcaster) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Dropped returns how many alerts slow subscribers missed.
func (b *Broadcaster) Dropped() int64 { return b.dropped.Load() }
