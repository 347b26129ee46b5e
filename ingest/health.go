package ingest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// fetchHealth tells whether a reader's fetches go through: kafka-go retries
// failed fetches by itself and only logs them, so the reader's error log
// and its statistics are what show a broker that does not answer. Fetching
// counts as failing once errors have kept coming for longer than grace
// with no clean fetch in between. Safe for concurrent use.
type fetchHealth struct {
	grace time.Duration

	mu           sync.Mutex
	failingSince time.Time // first error since the last clean fetch
	lastErrAt    time.Time
	lastErr      string
	errs         int // errors noted since the last poll
}

func newFetchHealth(grace time.Duration) *fetchHealth {
	if grace <= 0 {
		grace = 5 * time.Second
	}
	return &fetchHealth{grace: grace}
}

// failed notes an error fetching (or joining, or reaching a leader).
func (h *fetchHealth) failed(msg string) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failingSince.IsZero() {
		h.failingSince = now
	}
	h.lastErrAt, h.lastErr = now, msg
	h.errs++
}

// errorLogger is a kafka-go logger that notes every error it is told and
// passes it on to next (may be nil).
func (h *fetchHealth) errorLogger(next func(msg string)) kafka.Logger {
	return kafka.LoggerFunc(func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		h.failed(msg)
		if next != nil {
			next(msg)
		}
	})
}

// observe takes a reader's statistics since the last call: fetches that
// went through with no error noted meanwhile clear the failure.
func (h *fetchHealth) observe(st kafka.ReaderStats) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st.Errors > 0 {
		if h.failingSince.IsZero() {
			h.failingSince = time.Now()
		}
		h.lastErrAt = time.Now()
	}
	if st.Fetches > 0 && st.Errors == 0 && h.errs == 0 {
		h.failingSince = time.Time{}
	}
	h.errs = 0
}

// watch observes r's statistics every second until ctx ends.
func (h *fetchHealth) watch(ctx context.Context, r *kafka.Reader) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.observe(r.Stats())
		}
	}
}

// check returns why fetching fails, or nil: errors for longer than grace,
// the last of them recent (errors that stopped coming are over).
func (h *fetchHealth) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if h.failingSince.IsZero() || now.Sub(h.failingSince) < h.grace || now.Sub(h.lastErrAt) > 3*h.grace {
		return nil
	}
	return fmt.Errorf("fetches failing for %s: %s", now.Sub(h.failingSince).Round(time.Second), h.lastErr)
}
