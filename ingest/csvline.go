package ingest

import (
	"errors"
	"fmt"
)

// errQuote is the reason of a CSV line whose quoting is broken.
var errQuote = errors.New("broken CSV quoting")

// splitCSV splits one CSV line (RFC 4180 quoting, no newlines inside fields)
// into dst. Reading replay files a line at a time means a broken quote costs
// one line, where encoding/csv would read on to the end of the file looking
// for the closing quote.
func splitCSV(line []byte, dst []string) ([]string, error) {
	dst = dst[:0]
	i := 0
	for {
		if i < len(line) && line[i] == '"' {
			var buf []byte
			j := i + 1
			for {
				if j >= len(line) {
					return dst, fmt.Errorf("%w: quoted field starting at byte %d is not closed", errQuote, i+1)
				}
				if line[j] == '"' {
					if j+1 < len(line) && line[j+1] == '"' {
						buf = append(buf, '"')
						j += 2
						continue
					}
					j++
					break
				}
				buf = append(buf, line[j])
				j++
			}
			dst = append(dst, string(buf))
			if j == len(line) {
				return dst, nil
			}
			if line[j] != ',' {
				return dst, fmt.Errorf("%w: unexpected %q after closing quote at byte %d", errQuote, line[j], j+1)
			}
			i = j + 1
			continue
		}
		j := i
		for j < len(line) && line[j] != ',' {
			if line[j] == '"' {
				return dst, fmt.Errorf("%w: bare quote in unquoted field at byte %d", errQuote, j+1)
			}
			j++
		}
		dst = append(dst, string(line[i:j]))
		if j == len(line) {
			return dst, nil
		}
		i = j + 1
	}
}
