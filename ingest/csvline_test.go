package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestSplitCSV(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		bad  bool
	}{
		{`a,b,c`, []string{"a", "b", "c"}, false},
		{`a,,c,`, []string{"a", "", "c", ""}, false},
		{``, []string{""}, false},
		{`"a,b","say ""hi""",c`, []string{"a,b", `say "hi"`, "c"}, false},
		{`"",x`, []string{"", "x"}, false},
		{`"open,b`, nil, true},
		{`"a"b,c`, nil, true},
		{`a"b,c`, nil, true},
	}
	for _, c := range cases {
		got, err := splitCSV([]byte(c.in), nil)
		if c.bad {
			if !errors.Is(err, errQuote) {
				t.Errorf("%q: err = %v, want broken quote", c.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// FuzzSplitCSV checks the splitter against encoding/csv on lines both
// accept.
func FuzzSplitCSV(f *testing.F) {
	for _, s := range []string{`a,b`, `"a,b",c`, `"x""y"`, `"open`, `a"b`, `,,`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\r\n") {
			return
		}
		got, err := splitCSV([]byte(line), nil)
		r := csv.NewReader(strings.NewReader(line))
		r.FieldsPerRecord = -1
		want, werr := r.Read()
		if err != nil || werr != nil || line == "" {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: split %q, encoding/csv %q", line, got, want)
		}
	})
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 300)
	in := "one\r\ntwo\n" + long + "\n\nlast"
	lr := newLineReader(strings.NewReader(in), 100)
	type line struct {
		text string
		num  int64
		long bool
		size int
	}
	var got []line
	for {
		b, n, size, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, line{string(b), n, tooLong, size})
	}
	if len(got) != 5 {
		t.Fatalf("got %d lines: %+v", len(got), got)
	}
	if got[0].text != "one" || got[1].text != "two" || got[3].text != "" || got[4].text != "last" || got[4].num != 5 {
		t.Errorf("lines = %+v", got)
	}
	if !got[2].long || got[2].size != 300 || !bytes.HasPrefix([]byte(got[2].text), []byte("xxx")) {
		t.Errorf("long line = %+v", got[2])
	}
	// A long line's digest covers all of it, not the head it keeps.
	lr = newLineReader(strings.NewReader("short\n"+long+"\r\nafter\n"), 100)
	for {
		_, _, _, tooLong, err := lr.next()
		if err != nil {
			t.Fatal(err)
		}
		if tooLong {
			break
		}
	}
	want := sha256.Sum256([]byte(long))
	if got := lr.digest(); got != hex.EncodeToString(want[:]) {
		t.Errorf("digest of the long line = %s, want the SHA-256 of all %d bytes", got, len(long))
	}
}
