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
func (c *Clock) Next() uint64 {
	now := uint64(time.Now().UnixNano())
	for {
		l := c.last.Load()
		n := now
		if n <= l {
			n = l + 1
		}
		if c.last.CompareAndSwap(l, n) {
			return n
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
// It reports whether the value was accepted.
func (d Decoder) JSON(s schemas.Stream, src Source, key, value []byte, ts time.Time, b *schemas.Batch) bool {
	before := b.Count(s)
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
	stamp(b, s, before)
	return true
}

// stamp gives the records appended to b since count from a fresh version.
func stamp(b *schemas.Batch, s schemas.Stream, from int) {
	switch s {
	case schemas.Licenses:
		for i := from; i < len(b.Licenses); i++ {
			b.Licenses[i].Version = versions.Next()
		}
	case schemas.Rigs:
		for i := from; i < len(b.Rigs); i++ {
			b.Rigs[i].Version = versions.Next()
		}
	case schemas.Meters:
		for i := from; i < len(b.Meters); i++ {
			b.Meters[i].Version = versions.Next()
		}
	case schemas.Readings:
		for i := from; i < len(b.Readings); i++ {
			b.Readings[i].Version = versions.Next()
		}
	case schemas.Purchases:
		for i := from; i < len(b.Purchases); i++ {
			b.Purchases[i].Version = versions.Next()
		}
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
