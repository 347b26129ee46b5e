package detect

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/schemas"
)

// Engine evaluates every alert rule over event time. It is safe for
// concurrent use, but calls to Evaluate are serialised: each continues the
// open findings of the call before it.
type Engine struct {
	cfg Config
	reg Registry
	log *zap.Logger

	mu     sync.Mutex
	lastTo time.Time           // where the previous call ended
	eps    map[string]*episode // open findings by kind and entity
	// accounts are the operators' prepaid balances as last settled
	accounts map[string]*account
	// models are the feeders' loss models of the last local day evaluated
	models []schemas.LossModel
	// rowsRead counts the readings read from Series, in all calls
	rowsRead int64
	// the feeders' and sites' hours the last call derived anew
	feederHours []schemas.FeederHour
	siteHours   []schemas.SiteHour
	// hoursFrom is where the hours of the last call begin when that call
	// started afresh (zero when it continued the one before)
	hoursFrom time.Time
	// st is what continuing calls carry over: the grid of hourly readings
	// and what is derived from it.
	st *state
}

// New returns an Engine reading the registry through reg.
func New(cfg Config, reg Registry, log *zap.Logger) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create detection engine: %w", err)
	}
	if reg == nil {
		return nil, fmt.Errorf("cannot create detection engine: %w: no registry", ErrConfig)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Engine{cfg: cfg.withDefaults(), reg: reg, log: log.With(zap.String("component", "detect")),
		eps: map[string]*episode{}, accounts: map[string]*account{}, st: newState()}, nil
}

// LossModels returns every feeder's loss model as judged for each local day
// the previous Evaluate reported: the ranking and the feeder page judge
// energy beyond normal losses with them.
func (e *Engine) LossModels() []schemas.LossModel {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.models)
}

// Hours returns the feeders' and sites' hours the last Evaluate derived
// anew: new hours, and hours a late or corrected reading (or a registry
// change) changed. Stored, they are the hourly figures the investigator
// pages show: those the detector judged, exact under redelivery and
// corrections.
func (e *Engine) Hours() ([]schemas.FeederHour, []schemas.SiteHour) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.feederHours), slices.Clone(e.siteHours)
}

// HoursFrom returns the first hour of the hours derived since the last
// Evaluate started afresh, when it did; zero when it continued the call
// before (whose hours it extends). With the end of the last call it
// bounds the span the stored hours cover without a gap.
func (e *Engine) HoursFrom() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hoursFrom
}

// Config returns the engine's configuration with defaults applied.
func (e *Engine) Config() Config { return e.cfg }

// Evaluate runs every rule at each hour boundary t in (from, to], each
// evaluation seeing the data before t, and returns the alerts that opened
// or changed: an ongoing finding comes back with its alert_id, a later
// window_end and grown figures. registry_violation alerts are those of the
// registry over [from, to). Alerts are ordered by kind, then by score,
// highest first.
//
// A call whose from is where the previous call ended continues its open
// findings; any other call starts afresh, replaying Config.Warmup before
// from without reporting it (from the hour the first reading ends in on,
// when src knows where its readings start and that is later).
func (e *Engine) Evaluate(ctx context.Context, src Series, from, to time.Time) ([]schemas.Alert, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	first := from.Truncate(time.Hour).Add(time.Hour) // first tick > from
	last := to.Truncate(time.Hour)                   // last tick <= to
	if last.Before(first) {
		return nil, nil
	}
	evalFrom := first
	fresh := e.lastTo.IsZero() || !from.Equal(e.lastTo)
	e.hoursFrom = time.Time{}
	if fresh {
		e.eps = map[string]*episode{}
		e.accounts = map[string]*account{}
		e.st = newState()
		evalFrom = first.Add(-e.cfg.Warmup)
		// Nothing to replay before the data: a fleet whose readings begin
		// within the warmup is evaluated from the hour its first reading
		// ends in on, and its grid starts on that local day.
		if sp, ok := src.(spanner); ok {
			dataFirst, _, err := sp.ReadingSpan(ctx)
			if err != nil {
				e.lastTo = time.Time{}
				return nil, fmt.Errorf("cannot read where the readings start: %w", err)
			}
			if s := HourOf(dataFirst).Add(time.Hour); !dataFirst.IsZero() && s.After(evalFrom) {
				evalFrom = minTime(s, first)
			}
		}
	}
	e.lastTo = to
	e.feederHours, e.siteHours = e.feederHours[:0], e.siteHours[:0]
	readFrom := e.dayStart(evalFrom.Add(-time.Hour)).Add(-e.cfg.Lookback)
	started := time.Now()
	if err := e.load(ctx, src, readFrom, last); err != nil {
		e.lastTo = time.Time{}
		e.st = newState()
		return nil, fmt.Errorf("cannot read readings for %s..%s: %w", readFrom.Format(time.RFC3339), last.Format(time.RFC3339), err)
	}
	g := e.st.g
	if fresh {
		e.hoursFrom = g.hourTime(0)
	}
	r := &run{e: e, cfg: &e.cfg, g: g, from: from, to: to,
		hFirst: g.hourOf(evalFrom) - 1, hReport: g.hourOf(first) - 1, hLast: g.n - 1}
	_, off := time.Unix(g.t0, 0).In(e.cfg.Location).Zone()
	r.off = int64(off)
	r.lookH = int(e.cfg.Lookback / time.Hour)
	r.slotOf = make([]uint8, g.n)
	for h := range r.slotOf {
		r.slotOf[h] = uint8(r.slot(h))
	}
	r.prepare(last)

	// The unregistered-load rule and the feeder balances read and keep
	// apart state (meters' baselines, feeders' fits), each partly on one
	// core: they run side by side.
	for _, steps := range [][]func() error{{r.overCapacity}, {r.unregistered, r.imbalance}, {r.quality}} {
		if err := ctx.Err(); err != nil {
			e.lastTo = time.Time{}
			return nil, err
		}
		if err := runSteps(steps); err != nil {
			e.lastTo = time.Time{}
			return nil, err
		}
	}
	if err := r.purchases(ctx, src, evalFrom.Add(-time.Hour), last); err != nil {
		e.lastTo = time.Time{}
		return nil, err
	}
	out := r.out
	// Episodes touched by this call: report them; forget closed ones.
	keys := make([]string, 0, len(e.eps))
	for k := range e.eps {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// Their evidence that needs the grid (a feeder's suspects) first, on
	// every core: each refresh reads the run and writes its own episode.
	var stale []*episode
	for _, k := range keys {
		if ep := e.eps[k]; ep.touched && ep.refresh != nil {
			stale = append(stale, ep)
		}
	}
	onCores(len(stale), func(i int) { stale[i].refresh(r, stale[i]) })
	for _, k := range keys {
		ep := e.eps[k]
		if ep.touched {
			out = append(out, ep.alert(&e.cfg))
			ep.touched = false
		}
		if ep.closed {
			delete(e.eps, k)
		}
	}
	out = append(out, e.reg.CheckWindow(from, to)...)
	slices.SortStableFunc(out, func(a, b schemas.Alert) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return strings.Compare(a.AlertID, b.AlertID)
	})
	e.log.Debug("evaluated", zap.Time("from", from), zap.Time("to", to), zap.Int("meters", len(g.ids)),
		zap.Int("alerts", len(out)), zap.Duration("took", time.Since(started)))
	return out, nil
}

// onCores calls fn(i) for i in [0, n) on every core, each i once, and
// returns when all have returned.
func onCores(n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// runSteps runs steps side by side and returns the first one's error.
func runSteps(steps []func() error) error {
	if len(steps) == 1 {
		return steps[0]()
	}
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, step := range steps {
		wg.Go(func() { errs[i] = step() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) dayStart(t time.Time) time.Time {
	y, m, d := t.In(e.cfg.Location).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, e.cfg.Location).UTC()
}

// run is the state of one Evaluate call.
type run struct {
	e     *Engine
	cfg   *Config
	g     *grid
	from  time.Time
	to    time.Time
	meta  []meterInfo
	known []bool
	off   int64 // local offset, seconds
	lookH int   // lookback in hours
	// hours of the grid: evaluations run at the end of each hour in
	// [hFirst, hLast]; those ending after from are reported
	hFirst, hReport, hLast int
	out                    []schemas.Alert
	epMu                   sync.Mutex // e.eps and out, while rules run side by side
	owners                 map[string][]schemas.Rig
	// the feeders' and sites' series are derived again from these hours
	// on (prepare); the lists of this call
	fedFrom, capFrom int
	fs               []*feederSeries
	ss               []*siteSeries
	cbuf             []float64
	slotBuf          [48][]float64 // meterBaseline's
	slotOf           []uint8       // slot of every hour of the grid
}

// hod returns the local hour of day of grid hour h.
func (r *run) hod(h int) int {
	return int(floorDiv(r.g.t0+int64(h)*hourS+r.off, hourS) % 24)
}

// dayOf returns the grid hour that starts the local day holding hour h.
func (r *run) dayOf(h int) int { return h - r.hod(h) }

// tick returns the evaluation instant at the end of hour h, Unix seconds.
func (r *run) tick(h int) int64 { return r.g.t0 + int64(h+1)*hourS }

// episode is one finding over its life: opened at the first evaluation that
// held it, kept while it holds, closed after Config.CloseAfter without.
type episode struct {
	kind, entity string
	variant      string
	id           string
	base         schemas.Alert // ids and entity
	start        int64         // onset estimate, Unix s
	detected     int64
	last         int64 // last evaluation that held it
	fails        int   // evaluations since last held
	touched      bool  // held or opened at a reported evaluation
	closed       bool

	// rule state frozen at detection
	level, ref, cut float64
	refOwn          bool
	usual           [48]float64 // unregistered_load: usual kW by slot (weekday, weekend hours)
	idle            [24]bool    // unregistered_load: hours the meter is normally idle
	minedDays       map[int64]bool
	loss            lossModel // feeder_imbalance, topology_change: the feeder's normal losses
	model           string
	related         string                 // topology_change: the other feeder
	suspects        []schemas.SuspectMeter // feeder_imbalance
	closeAfter      time.Duration          // 0: Config.CloseAfter
	// feeder_imbalance re-judges its loss model each local day and re-sums
	// its figures with it; hours before carryTo (no longer in the grid)
	// keep the figures they were summed with.
	modelDay int64
	carry    sums
	carryTo  int64
	call     *run // the call that last resummed the episode
	// feeder_imbalance: the suspects' blocks of the days before the last
	// one, and what they were cut with
	sb    []sblock
	sbKey suspectKey
	sm    suspectMoments // the members' moments over sb

	cur, held sums // running, and as of the last held evaluation
	finish    func(ep *episode, a *schemas.Alert, cfg *Config)
	// refresh, if set, brings evidence that needs the grid up to date
	// before the episode is reported.
	refresh func(r *run, ep *episode)
}

// sums accumulates an episode's figures hour by hour.
type sums struct {
	obs, exp, cap float64 // over valid hours
	hours, valid  int
	ratios        []float64
	extra         float64
	end           int64 // purchase_shortfall: the end of the last short period, Unix s
}

func (s sums) clone() sums {
	s.ratios = slices.Clone(s.ratios)
	return s
}

// scale turns sums over valid hours into estimates over every hour.
func (s *sums) scale() float64 {
	if s.valid == 0 {
		return 1
	}
	return float64(s.hours) / float64(s.valid)
}

// episode returns the open episode of kind on entity, nil if none. Rules
// run side by side (Evaluate): the episodes and the output are shared, so
// every use of them holds epMu.
func (r *run) episode(kind, entity, variant string) *episode {
	r.epMu.Lock()
	defer r.epMu.Unlock()
	return r.e.eps[kind+"\x00"+entity+"\x00"+variant]
}

// open starts an episode detected at the evaluation ending hour h. variant
// tells apart findings of one kind on one entity that run side by side
// (the daily and the monthly settlement of an operator).
func (r *run) open(kind, entity, variant string, h int, onset int64, base schemas.Alert) *episode {
	ep := &episode{kind: kind, entity: entity, variant: variant, start: onset, detected: r.tick(h), last: r.tick(h), base: base}
	ep.id = schemas.AlertID(kind, entity, variant, time.Unix(onset, 0).UTC().Format(time.RFC3339))
	ep.touched = h >= r.hReport
	r.epMu.Lock()
	r.e.eps[ep.key()] = ep
	r.epMu.Unlock()
	return ep
}

func (ep *episode) key() string { return ep.kind + "\x00" + ep.entity + "\x00" + ep.variant }

// step records the evaluation at the end of hour h: held or not.
func (r *run) step(ep *episode, h int, held bool) {
	if held {
		ep.last, ep.fails = r.tick(h), 0
		ep.held = ep.cur.clone()
		if h >= r.hReport {
			ep.touched = true
		}
		return
	}
	ep.fails++
	closeAfter := r.cfg.CloseAfter
	if ep.closeAfter > 0 {
		closeAfter = ep.closeAfter
	}
	if time.Duration(ep.fails)*time.Hour >= closeAfter {
		// Closed: report it now if this call changed it, and make room for
		// a later recurrence, which is a new finding.
		ep.closed = true
		var a *schemas.Alert
		if ep.touched {
			if ep.refresh != nil {
				ep.refresh(r, ep)
			}
			al := ep.alert(r.cfg)
			a = &al
		}
		r.epMu.Lock()
		if a != nil {
			r.out = append(r.out, *a)
		}
		delete(r.e.eps, ep.key())
		r.epMu.Unlock()
	}
}

func (ep *episode) alert(cfg *Config) schemas.Alert {
	a := ep.base
	a.AlertID, a.Kind, a.EntityID = ep.id, ep.kind, ep.entity
	a.WindowStart = time.Unix(ep.start, 0).UTC()
	a.WindowEnd = time.Unix(ep.last, 0).UTC()
	a.DetectedAt = time.Unix(ep.detected, 0).UTC()
	a.Status = schemas.StatusOpen
	a.CreatedAt, a.UpdatedAt = a.DetectedAt, a.WindowEnd
	a.Evidence = map[string]any{}
	for k, v := range ep.base.Evidence {
		a.Evidence[k] = v
	}
	ep.finish(ep, &a, cfg)
	return a
}

func f64(v float64) *float64 { return &v }

// round keeps figures readable and stable in JSON.
func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func setEnergy(cfg *Config, a *schemas.Alert, obs, exp, excess float64) {
	a.ObservedKWh, a.ExpectedKWh, a.ExcessKWh = f64(round(obs, 1)), f64(round(exp, 1)), f64(round(excess, 1))
	a.EstimatedValueKZT = f64(round(excess*cfg.TariffKZTPerKWh, 0))
}

func localTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04")
}

func fmtKWh(v float64) string {
	if math.Abs(v) >= 10000 {
		return fmt.Sprintf("%.1f MWh", v/1000)
	}
	return fmt.Sprintf("%.0f kWh", v)
}

func fmtKZT(v float64) string {
	switch {
	case math.Abs(v) >= 1e6:
		return fmt.Sprintf("%.1f million KZT", v/1e6)
	case math.Abs(v) >= 1e3:
		return fmt.Sprintf("%.0f thousand KZT", v/1e3)
	}
	return fmt.Sprintf("%.0f KZT", v)
}

func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	return medianSorting(slices.Clone(v))
}

// medianSelecting is medianSorting found by selection, in linear time,
// reordering w. The middle values of w are the same whoever orders them,
// and so is the median, bit for bit, unless w holds a NaN or a negative
// zero (whose place among the zeros is the sort's): such a w is sorted.
func medianSelecting(w []float64) float64 {
	n := len(w)
	if n <= 16 {
		return medianSorting(w)
	}
	for _, v := range w {
		if v != v || v == 0 && math.Signbit(v) {
			return medianSorting(w)
		}
	}
	k := n / 2
	selectNth(w, k)
	if n%2 == 1 {
		return w[k]
	}
	lo := w[0]
	for _, v := range w[1:k] {
		lo = max(lo, v)
	}
	return (lo + w[k]) / 2
}

// selectNth reorders w (no NaNs) so that w[k] is the value a sort would
// put there, those before it no greater and those after no smaller.
func selectNth(w []float64, k int) {
	lo, hi := 0, len(w)-1
	for hi-lo >= 16 {
		// median of three as pivot; three-way partition, so that many
		// equal values (an idle meter's zeros) cost no more
		a, b, c := w[lo], w[lo+(hi-lo)/2], w[hi]
		p := max(min(a, b), min(max(a, b), c))
		lt, i, gt := lo, lo, hi
		for i <= gt {
			switch v := w[i]; {
			case v < p:
				w[lt], w[i] = v, w[lt]
				lt++
				i++
			case v > p:
				w[i], w[gt] = w[gt], v
				gt--
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt - 1
		case k > gt:
			lo = gt + 1
		default:
			return
		}
	}
	for i := lo + 1; i <= hi; i++ {
		for j := i; j > lo && w[j] < w[j-1]; j-- {
			w[j], w[j-1] = w[j-1], w[j]
		}
	}
}

// medianSorting is medianOf sorting v itself.
func medianSorting(w []float64) float64 {
	if len(w) == 0 {
		return math.NaN()
	}
	slices.Sort(w)
	n := len(w)
	if n%2 == 1 {
		return w[n/2]
	}
	return (w[n/2-1] + w[n/2]) / 2
}

// siteOwner returns the operator and licence of a site at t, read from the
// latest record at or before t of any rig registered there.
func (r *run) siteOwner(site string, t time.Time) (op, lic string) {
	if r.owners == nil {
		r.owners = map[string][]schemas.Rig{}
	}
	hist, ok := r.owners[site]
	if !ok {
		hist = r.e.reg.SiteHistory(site)
		r.owners[site] = hist
	}
	for i := range hist {
		if hist[i].UpdatedAt.After(t) && op != "" {
			break
		}
		if !hist[i].Deleted && hist[i].OperatorID != "" {
			op, lic = hist[i].OperatorID, hist[i].LicenseID
		}
	}
	return op, lic
}

// meterAlert returns the identity fields of an alert about meter mi.
func (r *run) meterAlert(mi int32) schemas.Alert {
	m := r.meta[mi]
	a := schemas.Alert{EntityType: schemas.EntityMeter, MeterID: r.g.ids[mi], FeederID: m.FeederID, SiteID: m.SiteID, Oblast: m.Oblast}
	if m.SiteID != "" {
		a.OperatorID, a.LicenseID = r.siteOwner(m.SiteID, r.to)
	}
	return a
}
