package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	oklog "github.com/oklog/run"
)

// part is one long-running piece of serve: Run until ctx ends, finish
// pending work, return nil. Returning before ctx ends, with or without an
// error, is a failure that ends serve.
type part struct {
	name string
	run  func(ctx context.Context) error
}

// runParts runs parts as one group (oklog/run) until ctx ends or the first
// part returns: then every other part is told to stop (its context ends),
// and runParts waits for all of them. It returns nil when ctx ended first,
// else the first part's failure, naming the part: serve exits 1 with it.
func runParts(ctx context.Context, parts []part) error {
	var g oklog.Group
	stop := make(chan struct{})
	var once sync.Once
	g.Add(func() error {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		return nil
	}, func(error) { once.Do(func() { close(stop) }) })
	for _, p := range parts {
		pctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			err := p.run(pctx)
			switch {
			case pctx.Err() != nil:
				return nil // told to stop: whatever it says now is shutdown
			case err != nil:
				return fmt.Errorf("%s: %w", p.name, err)
			}
			return fmt.Errorf("%s stopped by itself", p.name)
		}, func(error) { cancel() })
	}
	return g.Run()
}

// progress is how a live detector tells readiness it is alive: ok after
// each pass of its loop that did what there was to do (evaluated, or found
// nothing to evaluate yet), failed after one that could not. Readiness
// fails once no pass has been ok for longer than the stall bound while this
// process leads. Safe for concurrent use.
type progress struct {
	mu      sync.Mutex
	lastOK  time.Time
	lastErr error
}

// start begins a term: the clock runs from now.
func (p *progress) start() {
	p.mu.Lock()
	p.lastOK, p.lastErr = time.Now(), nil
	p.mu.Unlock()
}

func (p *progress) ok() {
	p.mu.Lock()
	p.lastOK, p.lastErr = time.Now(), nil
	p.mu.Unlock()
}

func (p *progress) failed(err error) {
	p.mu.Lock()
	p.lastErr = err
	p.mu.Unlock()
}

// check returns why detection counts as stopped, or nil.
func (p *progress) check(stall time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	since := time.Since(p.lastOK)
	if since <= stall {
		return nil
	}
	if p.lastErr != nil {
		return fmt.Errorf("detection has failed for %s: %w", since.Round(time.Second), p.lastErr)
	}
	return fmt.Errorf("detection has made no progress for %s", since.Round(time.Second))
}
