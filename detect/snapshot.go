package detect

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// snapshotVersion changes whenever the snapshot's layout does: an engine
// never restores a snapshot of another layout, it starts afresh.
const snapshotVersion = 1

// snapshot is what an Engine needs to continue from where another left
// off: where its last call ended, its open findings and the operators'
// prepaid balances. The rolling grid is not in it: it is read again.
type snapshot struct {
	Version  int
	LastTo   time.Time
	Episodes []episodeState
	Accounts map[string]accountState
}

type episodeState struct {
	Kind, Entity, Variant, ID string
	Base                      schemas.Alert
	Start, Detected, Last     int64
	Fails                     int
	Touched                   bool
	Level, Ref, Cut           float64
	RefOwn                    bool
	Usual                     [48]float64
	Idle                      [24]bool
	MinedDays                 map[int64]bool
	Loss                      lossState
	Model, Related            string
	Suspects                  []schemas.SuspectMeter
	CloseAfter                time.Duration
	ModelDay                  int64
	Carry, Cur, Held          sumsState
	CarryTo                   int64
}

type lossState struct {
	C, A, B, Sigma  float64
	N               int
	Share, TypM     float64
	LoM, HiM        float64
	Source          string
	FitShare, Allow float64
	OK              bool
}

type sumsState struct {
	Obs, Exp, Cap float64
	Hours, Valid  int
	Ratios        []float64
	Extra         float64
	End           int64
}

type accountState struct {
	Metered, Bought     float64
	Settled, MonthStart int64
	Month               float64
}

// finishes gives each kind of finding its finish and refresh, which a
// snapshot cannot hold.
var finishes = map[string]struct {
	finish  func(ep *episode, a *schemas.Alert, cfg *Config)
	refresh func(r *run, ep *episode)
}{
	schemas.KindOverCapacity:      {finish: finishOverCapacity},
	schemas.KindUnregisteredLoad:  {finish: finishUnregistered},
	schemas.KindFeederImbalance:   {finish: finishImbalance, refresh: refreshSuspects},
	schemas.KindTopologyChange:    {finish: finishTopology},
	schemas.KindPurchaseShortfall: {finish: finishShortfall},
	schemas.KindDataQuality:       {finish: finishQuality},
}

// Snapshot returns the engine's state between calls, for another engine to
// Restore and continue from: the failover of live detection. It holds
// where the last call ended, the open findings and the operators' prepaid
// balances.
func (e *Engine) Snapshot() ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := snapshot{Version: snapshotVersion, LastTo: e.lastTo, Accounts: map[string]accountState{}}
	for _, ep := range e.eps {
		s.Episodes = append(s.Episodes, episodeState{
			Kind: ep.kind, Entity: ep.entity, Variant: ep.variant, ID: ep.id, Base: ep.base,
			Start: ep.start, Detected: ep.detected, Last: ep.last, Fails: ep.fails, Touched: ep.touched,
			Level: ep.level, Ref: ep.ref, Cut: ep.cut, RefOwn: ep.refOwn, Usual: ep.usual, Idle: ep.idle,
			MinedDays: ep.minedDays, Loss: lossOut(ep.loss), Model: ep.model, Related: ep.related,
			Suspects: ep.suspects, CloseAfter: ep.closeAfter, ModelDay: ep.modelDay,
			Carry: sumsOut(ep.carry), Cur: sumsOut(ep.cur), Held: sumsOut(ep.held), CarryTo: ep.carryTo,
		})
	}
	for op, a := range e.accounts {
		s.Accounts[op] = accountState{a.metered, a.bought, a.settled, a.monthStart, a.month}
	}
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(&s); err != nil {
		return nil, fmt.Errorf("cannot encode the detector's state: %w", err)
	}
	return b.Bytes(), nil
}

// Restore makes the engine continue from a Snapshot: its next call from
// where the snapshot's last call ended continues that call's findings
// (reading its lookback again). A snapshot of another layout is refused.
func (e *Engine) Restore(b []byte) error {
	var s snapshot
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&s); err != nil {
		return fmt.Errorf("cannot decode the detector's state: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("%w: detector state of layout %d, want %d", ErrConfig, s.Version, snapshotVersion)
	}
	eps := map[string]*episode{}
	for _, x := range s.Episodes {
		f, ok := finishes[x.Kind]
		if !ok {
			return fmt.Errorf("%w: detector state holds a finding of unknown kind %q", ErrConfig, x.Kind)
		}
		ep := &episode{kind: x.Kind, entity: x.Entity, variant: x.Variant, id: x.ID, base: x.Base,
			start: x.Start, detected: x.Detected, last: x.Last, fails: x.Fails, touched: x.Touched,
			level: x.Level, ref: x.Ref, cut: x.Cut, refOwn: x.RefOwn, usual: x.Usual, idle: x.Idle,
			minedDays: x.MinedDays, loss: lossIn(x.Loss), model: x.Model, related: x.Related,
			suspects: x.Suspects, closeAfter: x.CloseAfter, modelDay: x.ModelDay,
			carry: sumsIn(x.Carry), cur: sumsIn(x.Cur), held: sumsIn(x.Held), carryTo: x.CarryTo,
			finish: f.finish, refresh: f.refresh}
		eps[ep.key()] = ep
	}
	accounts := map[string]*account{}
	for op, a := range s.Accounts {
		acc := account{a.Metered, a.Bought, a.Settled, a.MonthStart, a.Month}
		accounts[op] = &acc
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastTo, e.eps, e.accounts, e.st = s.LastTo, eps, accounts, newState()
	return nil
}

// LastTo returns where the engine's last call ended: the event time up to
// which it has evaluated (zero before any call, or after a failed one).
func (e *Engine) LastTo() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastTo
}

func lossOut(l lossModel) lossState {
	return lossState{l.c, l.a, l.b, l.sigma, l.n, l.share, l.typM, l.loM, l.hiM, l.source, l.fitShare, l.allow, l.ok}
}

func lossIn(l lossState) lossModel {
	return lossModel{l.C, l.A, l.B, l.Sigma, l.N, l.Share, l.TypM, l.LoM, l.HiM, l.Source, l.FitShare, l.Allow, l.OK}
}

func sumsOut(s sums) sumsState {
	return sumsState{s.obs, s.exp, s.cap, s.hours, s.valid, s.ratios, s.extra, s.end}
}

func sumsIn(s sumsState) sums {
	return sums{s.Obs, s.Exp, s.Cap, s.Hours, s.Valid, s.Ratios, s.Extra, s.End}
}

// Reset makes the engine's next call start afresh.
func (e *Engine) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastTo, e.eps, e.accounts, e.st = time.Time{}, map[string]*episode{}, map[string]*account{}, newState()
}
