package detect

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/schemas"
)

// LiveSource is the stored data live detection reads: the readings and
// purchases of a Series, and how far the meters have reported.
type LiveSource interface {
	Series
	// ReadingSpan returns the earliest and latest reading times stored,
	// zero when there are none.
	ReadingSpan(ctx context.Context) (from, to time.Time, err error)
	// Watermark returns the event time that nearly every meter heard from
	// recently has reported up to, given the latest reading stored.
	Watermark(ctx context.Context, latest time.Time) (time.Time, error)
}

// Barrier holds an evaluation back until what it must see is stored: the
// registry and purchases produced before the readings it evaluates.
type Barrier interface {
	// Note records what must be stored before an evaluation chosen now.
	Note(ctx context.Context) error
	// Passed reports whether everything noted is stored.
	Passed(ctx context.Context) (bool, error)
}

// Marks connects live detection with ingest about readings stored behind
// it: the engine publishes how far it has read (its horizon) before it
// reads; ingest, after storing a batch, marks its readings that end at or
// before the horizon it then finds published; the engine takes the marks
// before each evaluation and reads their hours again.
type Marks interface {
	Publish(ctx context.Context, horizon time.Time) error
	Take(ctx context.Context) ([]Mark, error)
}

// StateStore keeps the engine's Snapshot, so that a process taking over
// live detection continues where the last one stopped.
type StateStore interface {
	// Load returns the latest snapshot saved, or nil.
	Load(ctx context.Context) ([]byte, error)
	Save(ctx context.Context, to time.Time, snapshot []byte) error
}

// Live runs an Engine on live data. It owns the schedule, the event-time
// watermark and the engine's rolling state: every Every it reads the
// watermark (the time nearly all meters have reported past), and once the
// Barrier has passed evaluates up to the last whole hour before the
// watermark less Lateness, reading only the hours it has not read and
// those Marks name. So a live run sees the data a replay sees and alerts
// alike.
type Live struct {
	Engine   *Engine
	Source   LiveSource
	Barrier  Barrier    // optional
	Marks    Marks      // optional: without, late readings are not read again
	State    StateStore // optional: without, a new Live starts afresh
	Every    time.Duration
	Lateness time.Duration
	// Emit receives the alerts of each evaluation up to to (opened or
	// changed); an error makes the evaluation be tried again.
	Emit func(ctx context.Context, to time.Time, alerts []schemas.Alert) error
	// Evaluated, if set, is told of each evaluation once its findings
	// are emitted and its state saved: its event time, how long the
	// engine took and how many readings it has read in all.
	Evaluated func(to time.Time, took time.Duration, rowsRead int64)
	// Stepped, if set, is told how each tick's step ended: nil when it did
	// what there was to do (evaluated, or found nothing new), else why not.
	Stepped func(err error)
	Log     *zap.Logger

	saved []byte // the snapshot after the last evaluation emitted

	mu     sync.Mutex
	status LiveStatus
}

// LiveStatus is how live detection stands.
type LiveStatus struct {
	EventTime time.Time // evaluated up to here
	At        time.Time // when it last evaluated or found nothing new to do
	Err       error     // the last step's failure, nil once one succeeds
}

// Status returns how live detection stands.
func (l *Live) Status() LiveStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

// maxCatchUp is the longest gap live detection evaluates from where it
// stood; beyond it, it starts a week before the watermark.
const maxCatchUp = 30 * 24 * time.Hour

// Run evaluates until ctx ends. Failures to read or emit are retried on
// the next tick and reported by Status; Run returns nil when ctx ends, or
// an error when it cannot start.
func (l *Live) Run(ctx context.Context) error {
	if l.Engine == nil || l.Source == nil || l.Emit == nil || l.Every <= 0 || l.Lateness < 0 {
		return fmt.Errorf("%w: live detection needs an engine, a source, an emitter and a positive period", ErrConfig)
	}
	last, err := l.start(ctx)
	if err != nil {
		return err
	}
	log := l.log()
	var pending time.Time // next target, once the barrier passes
	t := time.NewTicker(l.Every)
	defer t.Stop()
	for {
		progressed, err := l.step(ctx, &last, &pending)
		if ctx.Err() != nil {
			return nil
		}
		l.mu.Lock()
		l.status.Err = err
		l.status.EventTime = last
		if err == nil {
			l.status.At = time.Now()
		}
		l.mu.Unlock()
		if l.Stepped != nil {
			l.Stepped(err)
		}
		if err != nil {
			log.Warn("detection failed; retrying next tick", zap.Error(err))
		}
		if progressed && err == nil {
			// Evaluated, or chose the next target: behind the data,
			// detection goes on at once instead of waiting for a tick.
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (l *Live) log() *zap.Logger {
	if l.Log == nil {
		return zap.NewNop()
	}
	return l.Log
}

// start restores the engine from the stored state, if any, and returns
// where it stands.
func (l *Live) start(ctx context.Context) (time.Time, error) {
	if l.State == nil {
		return time.Time{}, nil
	}
	b, err := l.State.Load(ctx)
	if err != nil || b == nil {
		if err != nil {
			err = fmt.Errorf("cannot load the detector's state: %w", err)
		}
		return time.Time{}, err
	}
	if err := l.Engine.Restore(b); err != nil {
		l.log().Warn("starting afresh", zap.Error(err))
		return time.Time{}, nil
	}
	l.saved = b
	last := l.Engine.LastTo()
	l.log().Info("continuing from the stored state", zap.Time("event_time", last))
	return last, nil
}

// step evaluates up to the pending target once the barrier has passed, and
// then chooses the next target from the watermark. It reports whether it
// evaluated or chose a new target: whether another step at once may do more.
func (l *Live) step(ctx context.Context, last, pending *time.Time) (bool, error) {
	progressed := false
	if !pending.IsZero() {
		if l.Barrier != nil {
			ok, err := l.Barrier.Passed(ctx)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, nil
			}
		}
		target := *pending
		if last.IsZero() || target.Sub(*last) > maxCatchUp {
			// Start where the data starts when it is recent enough to
			// replay, else a week before the target.
			first, _, err := l.Source.ReadingSpan(ctx)
			if err != nil {
				return false, err
			}
			*last = first.Add(-time.Second).UTC().Truncate(time.Hour)
			if target.Sub(*last) > maxCatchUp {
				*last = target.Add(-7 * 24 * time.Hour)
			}
		}
		if target.After(*last) {
			if err := l.evaluate(ctx, *last, target); err != nil {
				return false, err
			}
			*last = target
			progressed = true
		}
		*pending = time.Time{}
	}
	_, latest, err := l.Source.ReadingSpan(ctx)
	if err != nil || latest.IsZero() {
		return progressed, err
	}
	wm, err := l.Source.Watermark(ctx, latest)
	if err != nil {
		return false, err
	}
	target := wm.Add(-l.Lateness).UTC().Truncate(time.Hour)
	if !last.IsZero() && !target.After(*last) {
		return progressed, nil
	}
	if l.Barrier != nil {
		if err := l.Barrier.Note(ctx); err != nil {
			return false, err
		}
	}
	*pending = target
	return true, nil
}

// evaluate runs the engine over (from, to]: publishes the horizon, takes
// ingest's marks, evaluates, emits and saves the state.
func (l *Live) evaluate(ctx context.Context, from, to time.Time) error {
	if l.Marks != nil {
		if err := l.Marks.Publish(ctx, to); err != nil {
			return fmt.Errorf("cannot publish the detector's horizon: %w", err)
		}
		marks, err := l.Marks.Take(ctx)
		if err != nil {
			return fmt.Errorf("cannot read late readings: %w", err)
		}
		l.Engine.Invalidate(marks)
	}
	if err := l.evaluateOnce(ctx, from, to); err != nil {
		// The engine may have moved on without its findings reaching
		// anyone: take it back to the state last emitted, so that the
		// next try evaluates the same hours again.
		if l.saved != nil {
			if rerr := l.Engine.Restore(l.saved); rerr != nil {
				return errors.Join(err, rerr)
			}
		} else {
			l.Engine.Reset()
		}
		return err
	}
	return nil
}

func (l *Live) evaluateOnce(ctx context.Context, from, to time.Time) error {
	start := time.Now()
	alerts, err := l.Engine.Evaluate(ctx, l.Source, from, to)
	if err != nil {
		return fmt.Errorf("cannot evaluate %s..%s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	took := time.Since(start)
	if err := l.Emit(ctx, to, alerts); err != nil {
		return err
	}
	b, err := l.Engine.Snapshot()
	if err != nil {
		return err
	}
	if l.State != nil {
		if err := l.State.Save(ctx, to, b); err != nil {
			return fmt.Errorf("cannot save the detector's state: %w", err)
		}
	}
	l.saved = b
	// Told only now that everything up to to is stored: whoever waits for
	// it (and then stops serve) finds the alerts there.
	if l.Evaluated != nil {
		l.Evaluated(to, took, l.Engine.RowsRead())
	}
	return nil
}
