package ingest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"

	"github.com/rigwatch/rigwatch/schemas"
)

// File is one replay file of a stream.
type File struct {
	Stream schemas.Stream
	Path   string
	CSV    bool // else JSON Lines
	Gzip   bool
	Size   int64
}

// FindFiles lists the contract's replay files in dir, registry streams first
// and each stream's split files in name order: licenses.csv,
// readings-0001.jsonl.gz and so on. Other files are ignored.
func FindFiles(dir string) ([]File, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read replay directory: %w", err)
	}
	byStream := map[schemas.Stream][]File{}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		f := File{Path: filepath.Join(dir, name)}
		base := name
		if strings.HasSuffix(base, ".gz") {
			f.Gzip, base = true, strings.TrimSuffix(base, ".gz")
		}
		switch {
		case strings.HasSuffix(base, ".csv"):
			f.CSV, base = true, strings.TrimSuffix(base, ".csv")
		case strings.HasSuffix(base, ".jsonl"):
			base = strings.TrimSuffix(base, ".jsonl")
		default:
			continue
		}
		stem, _, _ := strings.Cut(base, "-")
		if stem != base && !strings.HasPrefix(base, stem+"-") {
			continue
		}
		s, ok := schemas.ParseStream(stem)
		if !ok {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		f.Stream, f.Size = s, info.Size()
		byStream[s] = append(byStream[s], f)
	}
	var out []File
	for _, s := range schemas.Streams {
		fs := byStream[s]
		sort.Slice(fs, func(i, j int) bool { return filepath.Base(fs[i].Path) < filepath.Base(fs[j].Path) })
		out = append(out, fs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no replay files in %s (want licenses, rigs, meters, readings or purchases as .csv or .jsonl, optionally .gz)", dir)
	}
	return out, nil
}

// countingReader counts the bytes read through it, for progress.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	atomic.AddInt64(c.n, int64(n))
	return n, err
}

// lineReader yields the lines of a file, each at most max bytes; a longer
// line is reported cut, with the size and SHA-256 of the whole of it, and
// reading goes on at the next line.
type lineReader struct {
	br   *bufio.Reader
	max  int
	line int64
	long []byte
	sum  hash.Hash
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 256<<10), max: max, sum: sha256.New()}
}

// next returns the next line without its line ending, its number, and
// whether it was longer than the limit (then line holds its first bytes,
// size its full length and digest the SHA-256 of all of it).
func (l *lineReader) next() (line []byte, num int64, size int, tooLong bool, err error) {
	l.long = l.long[:0]
	hashing := false
	for {
		frag, err := l.br.ReadSlice('\n')
		size += len(frag)
		body := frag // what the line's digest covers: all but the line ending
		if !errors.Is(err, bufio.ErrBufferFull) {
			body = trimEOL(frag)
		}
		switch {
		case hashing:
			l.sum.Write(body)
		case len(l.long)+len(frag) > l.max+2:
			// Too long to keep: hash it whole, keep its head.
			hashing = true
			l.sum.Reset()
			l.sum.Write(l.long)
			l.sum.Write(body)
			if keep := RawCut - len(l.long); keep > 0 {
				l.long = append(l.long, frag[:min(keep, len(frag))]...)
			}
		default:
			l.long = append(l.long, frag...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, 0, false, err
		}
		if size == 0 {
			return nil, 0, 0, false, io.EOF
		}
		l.line++
		content := size - (len(frag) - len(trimEOL(frag)))
		b := trimEOL(l.long)
		if content > l.max {
			if len(b) > RawCut {
				b = b[:RawCut]
			}
			return b, l.line, content, true, nil
		}
		return b, l.line, content, false, nil
	}
}

// A readLine is one line as the feed hands it over.
type readLine struct {
	off, end int    // the line (or a too-long line's head) is chunk.buf[off:end]
	num      int64  // line number
	size     int    // length of the whole line
	tooLong  bool   // longer than the limit
	digest   string // SHA-256 of a too-long line
}

// A lineChunk is a run of lines read ahead, copied into one buffer.
type lineChunk struct {
	buf   []byte
	lines []readLine
	err   error // the read error met after these lines; nil at the end of the file
}

func (c *lineChunk) line(l readLine) []byte { return c.buf[l.off:l.end] }

// chunks keeps line chunks from file to file: a replay of many files
// would otherwise grow three new ones for each.
var chunks = sync.Pool{New: func() any { return &lineChunk{} }}

// Limits of one chunk: lines, and bytes beyond which no line is added.
const (
	chunkLines = 4096
	chunkBytes = 1 << 20
)

// feedLines reads lr ahead in its own goroutine, so that reading, splitting
// and hashing lines overlap with decoding them. It sends chunks of lines to
// out, taking empty ones from free, and closes out at the end of the file,
// after a read error, or when ctx ends.
func feedLines(ctx context.Context, lr *lineReader, free <-chan *lineChunk, out chan<- *lineChunk) {
	defer close(out)
	for {
		var c *lineChunk
		select {
		case c = <-free:
		case <-ctx.Done():
			return
		}
		c.buf, c.lines, c.err = c.buf[:0], c.lines[:0], nil
		eof := false
		for len(c.lines) < chunkLines && len(c.buf) < chunkBytes {
			line, num, size, tooLong, err := lr.next()
			if errors.Is(err, io.EOF) {
				eof = true
				break
			}
			if err != nil {
				c.err, eof = err, true
				break
			}
			l := readLine{off: len(c.buf), num: num, size: size, tooLong: tooLong}
			c.buf = append(c.buf, line...)
			l.end = len(c.buf)
			if tooLong {
				l.digest = lr.digest()
			}
			c.lines = append(c.lines, l)
		}
		if len(c.lines) > 0 || c.err != nil {
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
		if eof {
			return
		}
	}
}

// digest returns the SHA-256 of the last line next reported too long,
// without its line ending: the same bytes as its size.
func (l *lineReader) digest() string { return hex.EncodeToString(l.sum.Sum(nil)) }

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// openFile opens f for reading, decompressing gzip; read bytes of the file
// itself are added to *progress.
func openFile(f File, progress *int64) (io.Reader, func() error, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open replay file: %w", err)
	}
	var r io.Reader = countingReader{r: fh, n: progress}
	if !f.Gzip {
		return r, fh.Close, nil
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(r, 256<<10))
	if err != nil {
		fh.Close()
		return nil, nil, fmt.Errorf("cannot read %s as gzip: %w", f.Path, err)
	}
	return zr, func() error { zr.Close(); return fh.Close() }, nil
}
