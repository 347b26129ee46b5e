// Package registry is the equipment registry: licences, rigs, sites and
// meters as they stood at any instant, the registered capacity of every site
// over time, the registry checks that raise registry_violation alerts, and
// the compliance calculator.
//
// Every record takes effect from its updated_at. The Index keeps every
// version of every key sorted by (updated_at, Meta.Version); the state of a
// key at instant t is the last version with updated_at <= t, so records may
// arrive in any order, a late older record changes nothing after the newer
// one, and a tombstone (Meta.Deleted) removes the key from its updated_at on.
package registry

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rigwatch/rigwatch/schemas"
)

// ErrInvalidInput is wrapped by every error about input the registry or the
// calculator cannot accept.
var ErrInvalidInput = errors.New("invalid input")

// Config configures an Index. The zero value is valid.
type Config struct {
	// MinPowerFactor: a rig whose declared rated power is below this
	// fraction of its model's catalogue power is a violation. Zero means 0.5.
	MinPowerFactor float64
	// MaxPowerFactor: a rig whose declared rated power is above this multiple
	// of its model's catalogue power is a violation. Zero means 2.0.
	MaxPowerFactor float64
	// Catalogue resolves model names. Nil means DefaultCatalogue().
	Catalogue *Catalogue
}

func (c Config) withDefaults() Config {
	if c.MinPowerFactor == 0 {
		c.MinPowerFactor = 0.5
	}
	if c.MaxPowerFactor == 0 {
		c.MaxPowerFactor = 2.0
	}
	if c.Catalogue == nil {
		c.Catalogue = DefaultCatalogue()
	}
	return c
}

// Validate reports whether the configuration (after defaults) is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	if !(c.MinPowerFactor > 0 && c.MinPowerFactor <= 1) {
		return fmt.Errorf("%w: min power factor %v must be in (0, 1]", ErrInvalidInput, c.MinPowerFactor)
	}
	if !(c.MaxPowerFactor >= 1) || math.IsInf(c.MaxPowerFactor, 0) {
		return fmt.Errorf("%w: max power factor %v must be >= 1 and finite", ErrInvalidInput, c.MaxPowerFactor)
	}
	return nil
}

// Index is the in-memory registry. It is safe for concurrent use: queries
// take a read lock and may run in parallel; Apply calls take the write lock,
// so one writer (or several, serialised) can apply records while readers
// query. Every query returns values the caller owns.
type Index struct {
	cfg Config
	log *zap.Logger

	mu sync.RWMutex

	// Interned names; an id is the position in the table.
	rigIDs, serials, models, operators, licenseIDs, sites names
	meterIDs, feeders, oblasts, labels                    names
	activeLabel                                           uint32

	rigs       [][]rigVer   // by rig id
	serialRigs []int32      // by serial: the first rig that had it
	serialMore [][2]uint32  // (serial, rig) for every further rig: rare
	modelPower []powerRange // by model id

	licenses   [][]licVer // by licence id
	opLicenses [][]uint32 // by operator: licences ever held

	siteCap  []series   // by site: capacity of active rigs
	siteRigs [][]uint32 // by site: rigs ever there
	groups   []group    // capacity of one (site, licence, operator)
	groupIdx map[groupKey]uint32
	// groups by site, licence and operator
	siteGroups, licGroups, opGroups [][]uint32

	meters       [][]meterVer
	feederMeters [][]uint32 // by feeder: meters ever on it
	siteMeters   [][]uint32 // by site: meters ever linked to it

	// changes counted per kind of record stored: a reader that keeps
	// figures derived from the index knows when to derive them again
	meterChanges, rigChanges uint64
	// findingChanges counts the rig and licence records stored: the
	// registry's findings change only with them (see findings)
	findingChanges uint64
	// the findings over all time, as of findingChanges = foundAt; guarded
	// by foundMu, as readers holding the read lock fill it
	foundMu sync.Mutex
	found   []violation
	foundAt uint64
	foundOK bool
	// meterTimes holds the updated_at of every meter record stored, sorted
	// when asked for (NextMeterChange)
	meterTimes       []int64
	meterTimesSorted bool

	dirty     []bool // by site, during a batch
	dirtyList []uint32
}

type groupKey struct{ site, lic, op uint32 }

type group struct {
	groupKey
	cap series
}

// New returns an empty Index.
func New(cfg Config, log *zap.Logger) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create registry index: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	ix := &Index{cfg: cfg.withDefaults(), log: log.With(zap.String("component", "registry")), groupIdx: map[groupKey]uint32{}}
	for _, n := range []*names{&ix.rigIDs, &ix.serials, &ix.models, &ix.operators, &ix.licenseIDs, &ix.sites, &ix.meterIDs, &ix.feeders, &ix.oblasts, &ix.labels} {
		n.idx = map[string]uint32{}
	}
	ix.activeLabel = ix.labels.intern(schemas.RigActive) // licences share the word
	return ix, nil
}

// names interns strings: each distinct string is stored once, and records
// refer to it by a dense uint32 id.
type names struct {
	idx map[string]uint32
	s   []string
}

func (n *names) intern(s string) uint32 {
	if i, ok := n.idx[s]; ok {
		return i
	}
	s = strings.Clone(s) // do not pin the decoder's buffer
	i := uint32(len(n.s))
	n.s = append(n.s, s)
	n.idx[s] = i
	return i
}

// growTo makes s long enough to be indexed by i.
func growTo[T any](s []T, i uint32) []T {
	for uint32(len(s)) <= i {
		var zero T
		s = append(s, zero)
	}
	return s
}

// Time is kept as Unix nanoseconds; instants outside what int64 nanoseconds
// can hold (years before 1678 or after 2262, e.g. a valid_to of 9999-12-31)
// are clamped to the ends of time.
const (
	minTime = math.MinInt64
	maxTime = math.MaxInt64
)

func nanos(t time.Time) int64 {
	s := t.Unix()
	switch {
	case s < math.MinInt64/1_000_000_000:
		return minTime
	case s >= math.MaxInt64/1_000_000_000:
		return maxTime
	}
	return t.UnixNano()
}

func timeOf(n int64) time.Time {
	switch n {
	case minTime:
		return time.Time{}
	case maxTime:
		return time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	}
	return time.Unix(0, n).UTC()
}

// stamp orders the versions of one key: by updated_at, then by the ingest
// version, so that of two records with the same updated_at the later
// delivery wins.
type stamp struct {
	at  int64
	ver uint64
}

func (s stamp) stampOf() stamp { return s }

func (s stamp) cmp(o stamp) int {
	switch {
	case s.at < o.at:
		return -1
	case s.at > o.at:
		return 1
	case s.ver < o.ver:
		return -1
	case s.ver > o.ver:
		return 1
	}
	return 0
}

type versioned interface{ stampOf() stamp }

// insertVersion puts v into vs in stamp order. It returns false if a version
// with the same stamp is already there: a redelivery, which changes nothing.
func insertVersion[V versioned](vs []V, v V) ([]V, int, bool) {
	s := v.stampOf()
	lo, hi := 0, len(vs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if vs[m].stampOf().cmp(s) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(vs) && vs[lo].stampOf().cmp(s) == 0 {
		return vs, lo, false
	}
	vs = append(vs, v)
	copy(vs[lo+1:], vs[lo:])
	vs[lo] = v
	return vs, lo, true
}

// versionAt returns the index of the version in effect at t, or -1.
func versionAt[V versioned](vs []V, t int64) int {
	lo, hi := 0, len(vs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if vs[m].stampOf().at <= t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// effectiveUntil returns the end of the span in which version i is in
// effect, and false if it never is (a same-instant version outranks it).
func effectiveUntil[V versioned](vs []V, i int) (int64, bool) {
	if i+1 < len(vs) {
		next := vs[i+1].stampOf().at
		return next, next != vs[i].stampOf().at
	}
	return maxTime, true
}

// eachState calls fn for every state of a key in [from, to): the index of
// the version in effect (-1 when none) and the sub-span it covers.
func eachState[V versioned](vs []V, from, to int64, fn func(i int, from, to int64)) {
	i := versionAt(vs, from)
	for from < to {
		j := i + 1
		end := int64(maxTime)
		if j < len(vs) {
			end = vs[j].stampOf().at
		}
		fn(i, from, min(end, to))
		if j >= len(vs) {
			return
		}
		from = end
		for i = j; i+1 < len(vs) && vs[i+1].stampOf().at == end; i++ {
		}
	}
}

func checkStamp(key, id string, t time.Time) error {
	if id == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalidInput, key)
	}
	if t.IsZero() {
		return fmt.Errorf("%w: %s %s has no updated_at", ErrInvalidInput, key, id)
	}
	return nil
}

// batchError summarises the records a batch skipped.
func batchError(what string, skipped int, first error) error {
	if skipped == 0 {
		return nil
	}
	return fmt.Errorf("skipped %d invalid %s, first: %w", skipped, what, first)
}
