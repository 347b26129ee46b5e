// Package ingest moves contract records from Kafka topics and replay files
// into storage: consume -> decode -> validate -> batch -> write -> commit.
// Bad input never stops it: each rejected record becomes a Reject with its
// source and reason, written beside the good records of its batch.
package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// RawCut is how much of an oversize input a reject keeps; RawSize and
// RawSHA256 still describe the whole input.
const RawCut = 64 << 10

// Clock hands out strictly increasing versions based on wall time, so a later
// delivery of a key always replaces an earlier one. Safe for concurrent use.
type Clock struct{ last atomic.Uint64 }

// Next returns a version greater than every one returned before.
func (c *Clock) Next() uint64 { return c.Reserve(1) }

// Reserve returns the first of n consecutive versions, each greater than
// every one returned before. n must be at least 1.
func (c *Clock) Reserve(n int) uint64 {
	now := uint64(time.Now().UnixNano())
	for {
		l := c.last.Load()
		first := now
		if first <= l {
			first = l + 1
		}
		if c.last.CompareAndSwap(l, first+uint64(n)-1) {
			return first
		}
	}
}

var versions Clock

// Source says where an input came from: a topic partition and offset, or a
// file and line.
type Source struct {
	Name      string
	Partition int32
	Offset    int64
	Line      int64
}

// Decoder turns raw inputs into records or rejects. Safe for concurrent use.
type Decoder struct {
	// MaxBytes limits one input value; zero means
	// schemas.DefaultMaxMessageBytes.
	MaxBytes int
}

func (d Decoder) max() int {
	if d.MaxBytes > 0 {
		return d.MaxBytes
	}
	return schemas.DefaultMaxMessageBytes
}

// JSON decodes one JSON value of stream s into b, or appends a reject. A nil
// value on a registry stream is a tombstone for key, taking effect at ts.
// It reports whether the value was accepted. Records get their versions
// when their batch is first written (stamp).
func (d Decoder) JSON(s schemas.Stream, src Source, key, value []byte, ts time.Time, b *schemas.Batch) bool {
	var err error
	switch {
	case value == nil:
		err = schemas.Tombstone(s, string(key), ts, b)
	case len(value) > d.max():
		err = &schemas.FieldError{Rule: schemas.RuleSize, Reason: fmt.Sprintf("value of %d bytes is larger than the %d-byte limit", len(value), d.max())}
	default:
		err = schemas.DecodeJSON(s, value, b)
	}
	if err != nil {
		b.Rejects = append(b.Rejects, NewReject(s, src, value, err))
		return false
	}
	return true
}

// stamp gives every record of b a fresh version, in the order the records
// were decoded, so that a later delivery of a key replaces an earlier one,
// in this batch or any before it. It is called once per batch, before the
// batch is first written: one reservation instead of a clock read per
// record.
func stamp(b *schemas.Batch) {
	n := len(b.Licenses) + len(b.Rigs) + len(b.Meters) + len(b.Readings) + len(b.Purchases)
	if n == 0 {
		return
	}
	v := versions.Reserve(n)
	for i := range b.Licenses {
		b.Licenses[i].Version, v = v, v+1
	}
	for i := range b.Rigs {
		b.Rigs[i].Version, v = v, v+1
	}
	for i := range b.Meters {
		b.Meters[i].Version, v = v, v+1
	}
	for i := range b.Readings {
		b.Readings[i].Version, v = v, v+1
	}
	for i := range b.Purchases {
		b.Purchases[i].Version, v = v, v+1
	}
}

// NewReject builds the reject of raw input from src that failed with err.
func NewReject(s schemas.Stream, src Source, raw []byte, err error) schemas.Reject {
	sum := sha256.Sum256(raw)
	return newReject(s, src, raw, int64(len(raw)), hex.EncodeToString(sum[:]), err)
}

// newReject builds a reject whose input, of size bytes with the given
// SHA-256, is known only by raw, all of it or its head.
func newReject(s schemas.Stream, src Source, raw []byte, size int64, sha string, err error) schemas.Reject {
	keep := raw
	if len(keep) > schemas.DefaultMaxMessageBytes {
		keep = keep[:RawCut]
	}
	return schemas.Reject{
		Stream:     s,
		Source:     src.Name,
		Partition:  src.Partition,
		Offset:     src.Offset,
		Line:       src.Line,
		Field:      schemas.FieldOf(err),
		Rule:       schemas.RuleOf(err),
		Reason:     err.Error(),
		Raw:        append([]byte(nil), keep...),
		RawSize:    size,
		RawSHA256:  sha,
		ReceivedAt: time.Now().UTC().Truncate(time.Second),
	}
}
