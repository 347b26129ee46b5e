package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/rigwatch/rigwatch/schemas"
)

// numericFields are written as JSON numbers when a CSV row is turned into a
// message; anything else is a string.
var numericFields = map[string]bool{
	"licensed_capacity_kw": true, "rated_power_w": true, "hashrate_ths": true,
	"kwh": true, "interval_s": true, "mwh": true, "price_kzt_per_mwh": true,
}

// ProduceFiles writes the replay files to their streams' topics, keyed as the
// contract says, so that the consumers load them. JSON Lines go as they are;
// a CSV row becomes a JSON object of its non-empty cells (a cell that should
// be a number but is not goes as a string, and the consumer rejects it); a
// line that cannot be split goes as its raw bytes, to be rejected there too.
// It returns the number of messages produced.
func ProduceFiles(ctx context.Context, files []File, brokers []string, dialer *kafka.Dialer, maxLine int) (int64, error) {
	writers := map[schemas.Stream]*kafka.Writer{}
	defer func() {
		for _, w := range writers {
			w.Close()
		}
	}()
	var n int64
	var progress int64
	for _, f := range files {
		w := writers[f.Stream]
		if w == nil {
			w = NewWriter(brokers, f.Stream.Topic(), dialer)
			writers[f.Stream] = w
		}
		r, closeFile, err := openFile(f, &progress)
		if err != nil {
			return n, err
		}
		lr := newLineReader(r, maxLine)
		var header, cells []string
		msgs := make([]kafka.Message, 0, 5000)
		send := func() error {
			if len(msgs) == 0 {
				return nil
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return fmt.Errorf("cannot produce %s to %s: %w", f.Path, f.Stream.Topic(), WriteError(err))
			}
			n += int64(len(msgs))
			msgs = msgs[:0]
			return nil
		}
		for {
			line, _, _, _, err := lr.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				closeFile()
				return n, err
			}
			if f.CSV && header == nil {
				header, err = splitCSV(line, nil)
				if err != nil {
					closeFile()
					return n, fmt.Errorf("%s: bad header: %w", f.Path, err)
				}
				continue
			}
			if len(line) == 0 {
				continue
			}
			value := append([]byte(nil), line...)
			var key string
			if f.CSV {
				if cells, err = splitCSV(line, cells); err == nil {
					obj := make(map[string]json.RawMessage, len(cells))
					for i, c := range cells {
						if i >= len(header) || c == "" {
							continue
						}
						if numericFields[header[i]] {
							if _, perr := strconv.ParseFloat(c, 64); perr == nil {
								obj[header[i]] = json.RawMessage(c)
								continue
							}
						}
						obj[header[i]], _ = json.Marshal(c)
						if header[i] == f.Stream.KeyField() {
							key = c
						}
					}
					value, _ = json.Marshal(obj)
				}
			} else {
				var k map[string]any
				if json.Unmarshal(line, &k) == nil {
					key, _ = k[f.Stream.KeyField()].(string)
				}
			}
			msgs = append(msgs, kafka.Message{Key: []byte(key), Value: value})
			if len(msgs) == cap(msgs) {
				if err := send(); err != nil {
					closeFile()
					return n, err
				}
			}
		}
		err = send()
		closeFile()
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
