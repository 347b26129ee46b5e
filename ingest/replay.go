package ingest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/schemas"
)

// Writer stores a batch. It must tolerate being given the same records
// again (a retry or redelivery) without changing any query result.
type Writer interface {
	WriteBatch(ctx context.Context, b *schemas.Batch) error
}

// BatchHook is called with every batch after it has been stored.
type BatchHook func(b *schemas.Batch)

// An Inserter writes batches through an insert it keeps open across them
// (store.Inserter): Write sends a batch, and only once Flush returns nil is
// everything sent since the last Flush stored. After an error nothing sent
// since the last Flush can be taken as stored.
type Inserter interface {
	Write(ctx context.Context, b *schemas.Batch) error
	// Rows returns how many readings were sent since the last Flush.
	Rows() int
	Flush(ctx context.Context) error
	// Abort drops the open insert; safe to call at any time.
	Abort()
}

// batchInserter is the Inserter of a plain Writer: each Write stores its
// batch at once.
type batchInserter struct{ w Writer }

func (b batchInserter) Write(ctx context.Context, bt *schemas.Batch) error {
	return b.w.WriteBatch(ctx, bt)
}
func (batchInserter) Rows() int                   { return 0 }
func (batchInserter) Flush(context.Context) error { return nil }
func (batchInserter) Abort()                      {}

// inserter returns an Inserter from open, or one over w when open is nil.
func inserter(open func() Inserter, w Writer) Inserter {
	if open != nil {
		return open()
	}
	return batchInserter{w}
}

// ReplayConfig configures a replay. Zero values take the defaults named.
type ReplayConfig struct {
	Dir       string
	BatchSize int // records per batch, a block of an insert; default 100,000
	MaxLine   int // bytes per line; default schemas.DefaultMaxMessageBytes
	// NewInserter, if set, opens an insert kept across batches
	// (store.Store.Inserter), ended every InsertRows readings; nil: every
	// batch is stored with one WriteBatch.
	NewInserter func() Inserter
	InsertRows  int // default 1,000,000
	// Inserts is how many inserts run at once, each with a writer of its
	// own: ClickHouse works on one insert in one thread. Default 2; 1 with
	// a hook.
	Inserts int
	// Progress, if set, is called about twice a second with bytes read so
	// far and in total.
	Progress func(done, total int64, rows int64)
	// Tap, if set, is shown every batch, stamped, once a writer has sent it
	// into its insert: from the writers' goroutines at once, in no set
	// order, before the insert ends. It must not keep the batch. What it
	// saw is stored only if Replay returns no error. Unlike a hook it keeps
	// the inserts as they are.
	Tap BatchHook
}

// Validate checks the configuration and fills defaults.
func (c *ReplayConfig) Validate() error {
	if c.Dir == "" {
		return errors.New("replay directory is empty")
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100_000
	}
	if c.MaxLine <= 0 {
		c.MaxLine = schemas.DefaultMaxMessageBytes
	}
	if c.InsertRows <= 0 {
		c.InsertRows = 1_000_000
	}
	if c.Inserts <= 0 {
		c.Inserts = 2
	}
	return nil
}

// StreamSummary counts what a replay did with one stream.
type StreamSummary struct {
	Stream   schemas.Stream   `json:"stream"`
	Files    int              `json:"files"`
	Accepted int64            `json:"accepted"`
	Rejected int64            `json:"rejected"`
	Reasons  map[string]int64 `json:"rejected_by_reason,omitempty"`
	Elapsed  time.Duration    `json:"-"`
	Seconds  float64          `json:"seconds"`
	RowsPerS float64          `json:"rows_per_s"`
}

// ReplaySummary is the outcome of a replay.
type ReplaySummary struct {
	Streams   []StreamSummary   `json:"streams"`
	Seconds   float64           `json:"seconds"`
	From      time.Time         `json:"from"` // event-time span of the readings
	To        time.Time         `json:"to"`
	Detection *DetectionSummary `json:"detection,omitempty"`
}

// DetectionSummary says what detection over a replayed period found.
// With no readings stored, NoReadings is set, From and To are zero, and
// RegistryAt, when there is a registry, is the instant whose registry
// was checked.
type DetectionSummary struct {
	From       time.Time      `json:"from"`
	To         time.Time      `json:"to"`
	NoReadings bool           `json:"no_readings,omitempty"`
	RegistryAt *time.Time     `json:"registry_at,omitempty"`
	Alerts     int            `json:"alerts"`
	ByKind     map[string]int `json:"by_kind"`
	File       string         `json:"alerts_out,omitempty"`
	Seconds    float64        `json:"seconds"`
}

// Replay loads the replay files of cfg.Dir through the same decode and
// validation path as the Kafka consumers, writing batches with w (or
// through cfg.NewInserter). Decoding and writing overlap: cfg.Inserts
// batches are written while the next is decoded. With a hook, every batch
// is stored on its own and in order, since the hook must see stored
// batches only.
func Replay(ctx context.Context, cfg ReplayConfig, w Writer, hook BatchHook, log *zap.Logger) (ReplaySummary, error) {
	var sum ReplaySummary
	if err := cfg.Validate(); err != nil {
		return sum, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("component", "replay"))
	files, err := FindFiles(cfg.Dir)
	if err != nil {
		return sum, err
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	start := time.Now()
	var done, rows atomic.Int64

	// Writers store full batches, each through inserts of its own; the
	// decoder stamps the batches in order, hands them over through full and
	// takes emptied ones back from free. Versions, not the order of the
	// inserts, decide which delivery of a key wins.
	writers := cfg.Inserts
	if hook != nil {
		writers = 1 // the hook sees the batches in order
	}
	full := make(chan *schemas.Batch, 1)
	free := make(chan *schemas.Batch, writers+1)
	for range writers + 1 {
		free <- &schemas.Batch{}
	}
	werr := make(chan error, writers)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ins := inserter(cfg.NewInserter, w)
			defer ins.Abort()
			var err error
			for b := range full {
				if err == nil {
					err = ins.Write(wctx, b)
					if err == nil && cfg.Tap != nil {
						cfg.Tap(b)
					}
					if err == nil && (hook != nil || ins.Rows() >= cfg.InsertRows) {
						err = ins.Flush(wctx)
					}
					if err == nil && hook != nil {
						hook(b)
					}
					if err != nil {
						cancel()
					}
				}
				b.Reset()
				free <- b
			}
			if err == nil {
				err = ins.Flush(wctx)
			}
			werr <- err
		}()
	}

	stopProgress := make(chan struct{})
	if cfg.Progress != nil {
		go func() {
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					cfg.Progress(done.Load(), total, rows.Load())
				}
			}
		}()
	}

	var progress int64
	dec := Decoder{MaxBytes: cfg.MaxLine}
	b := <-free
	byStream := map[schemas.Stream]*StreamSummary{}
	var readErr error
	for _, f := range files {
		ss := byStream[f.Stream]
		if ss == nil {
			ss = &StreamSummary{Stream: f.Stream, Reasons: map[string]int64{}}
			byStream[f.Stream] = ss
		}
		fstart := time.Now()
		n, err := replayFile(wctx, f, dec, &b, free, full, cfg.BatchSize, ss, &progress, &sum, func(p int64) { done.Store(p) })
		rows.Add(n)
		ss.Files++
		ss.Elapsed += time.Since(fstart)
		if err != nil {
			readErr = err
			break
		}
		log.Debug("replayed file", zap.String("file", f.Path), zap.Int64("rows", n))
	}
	if readErr == nil && b.Len() > 0 {
		stamp(b)
		full <- b
	}
	close(full)
	wg.Wait()
	close(werr)
	for e := range werr {
		// The first writer to fail cancels the others: its error is the one.
		if e != nil && (err == nil || errors.Is(err, context.Canceled)) {
			err = e
		}
	}
	close(stopProgress)
	if cfg.Progress != nil {
		cfg.Progress(done.Load(), total, rows.Load())
	}
	if err != nil {
		return sum, fmt.Errorf("cannot store replayed records: %w", err)
	}
	if readErr != nil {
		return sum, readErr
	}
	sum.Seconds = time.Since(start).Seconds()
	for _, s := range schemas.Streams {
		if ss := byStream[s]; ss != nil {
			ss.Seconds = ss.Elapsed.Seconds()
			if ss.Seconds > 0 {
				ss.RowsPerS = float64(ss.Accepted+ss.Rejected) / ss.Seconds
			}
			sum.Streams = append(sum.Streams, *ss)
		}
	}
	return sum, nil
}

// replayFile decodes one file into batches, handing each full batch to the
// writer. It returns the number of lines read.
func replayFile(ctx context.Context, f File, dec Decoder, b **schemas.Batch, free, full chan *schemas.Batch,
	batchSize int, ss *StreamSummary, progress *int64, sum *ReplaySummary, report func(int64)) (int64, error) {
	r, closeFile, err := openFile(f, progress)
	if err != nil {
		return 0, err
	}
	defer closeFile()
	name, _ := filepath.Abs(f.Path)
	// Lines are read ahead by feedLines; three chunks keep it a chunk or
	// two ahead of the decoder.
	fctx, stopFeed := context.WithCancel(ctx)
	fed, freeChunks := make(chan *lineChunk, 1), make(chan *lineChunk, 3)
	for range 3 {
		freeChunks <- chunks.Get().(*lineChunk)
	}
	go feedLines(fctx, newLineReader(r, dec.max()), freeChunks, fed)
	var c *lineChunk
	defer func() {
		// The feed must be done with the file before it is closed; the
		// chunks go back to the pool, all three.
		stopFeed()
		for fc := range fed {
			chunks.Put(fc)
		}
		for len(freeChunks) > 0 {
			chunks.Put(<-freeChunks)
		}
		if c != nil {
			chunks.Put(c)
		}
	}()
	var csvDec *schemas.CSVDecoder
	var fast *readingLine
	var cells []string
	var n int64
	var at int
	for {
		if c == nil || at == len(c.lines) {
			if c != nil {
				if c.err != nil {
					return n, fmt.Errorf("cannot read %s: %w", f.Path, c.err)
				}
				freeChunks <- c
			}
			var ok bool
			if c, ok = <-fed; !ok {
				if ctx.Err() != nil {
					return n, ctx.Err()
				}
				break
			}
			at = 0
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			report(atomic.LoadInt64(progress))
			if len(c.lines) == 0 {
				continue
			}
		}
		rl := c.lines[at]
		at++
		line, num, size, tooLong := c.line(rl), rl.num, rl.size, rl.tooLong
		if f.CSV && csvDec == nil {
			if tooLong {
				return n, fmt.Errorf("%s: header line is longer than %d bytes", f.Path, dec.max())
			}
			cells, err = splitCSV(line, cells)
			if err == nil {
				csvDec, err = schemas.NewCSVDecoder(f.Stream, cells)
			}
			if err != nil {
				return n, fmt.Errorf("%s: bad header: %w", f.Path, err)
			}
			if f.Stream == schemas.Readings {
				fast = newReadingLine(csvDec)
				// a batch's readings grow once, not by doubling
				(*b).Readings = slices.Grow((*b).Readings, batchSize)
			}
			continue
		}
		if len(line) == 0 && !tooLong {
			continue
		}
		n++
		src := Source{Name: name, Partition: -1, Offset: -1, Line: num}
		before := len((*b).Rejects)
		cur := *b
		switch {
		case tooLong:
			// line is the head of it; the feed hashed the whole.
			cur.Rejects = append(cur.Rejects, newReject(f.Stream, src, line, int64(size), rl.digest,
				&schemas.FieldError{Rule: schemas.RuleSize, Reason: fmt.Sprintf("line of %d bytes is longer than the %d-byte limit", size, dec.max())}))
		case fast != nil && fast.decode(line, cur):
			// The fast path took it.
		case f.CSV:
			var cerr error
			cells, cerr = splitCSV(line, cells)
			if cerr == nil {
				cerr = csvDec.Decode(cells, cur)
			} else {
				cerr = &schemas.FieldError{Rule: schemas.RuleSyntax, Reason: cerr.Error()}
			}
			if cerr != nil {
				cur.Rejects = append(cur.Rejects, NewReject(f.Stream, src, line, cerr))
			}
		default:
			dec.JSON(f.Stream, src, nil, line, time.Time{}, cur)
		}
		if len(cur.Rejects) > before {
			ss.Rejected++
			rj := &cur.Rejects[len(cur.Rejects)-1]
			key := rj.Rule
			if rj.Field != "" {
				key = rj.Field + " " + rj.Rule
			}
			ss.Reasons[key]++
		} else {
			ss.Accepted++
			if f.Stream == schemas.Readings {
				ts := cur.Readings[len(cur.Readings)-1].TS
				if sum.From.IsZero() || ts.Before(sum.From) {
					sum.From = ts
				}
				if ts.After(sum.To) {
					sum.To = ts
				}
			}
		}
		if cur.Len() >= batchSize {
			stamp(cur)
			select {
			case full <- cur:
			case <-ctx.Done():
				return n, ctx.Err()
			}
			select {
			case *b = <-free:
			case <-ctx.Done():
				return n, ctx.Err()
			}
		}
	}
	return n, nil
}

// SortedReasons returns the reasons of s, most frequent first.
func (s StreamSummary) SortedReasons() []string {
	keys := make([]string, 0, len(s.Reasons))
	for k := range s.Reasons {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if s.Reasons[keys[i]] != s.Reasons[keys[j]] {
			return s.Reasons[keys[i]] > s.Reasons[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
