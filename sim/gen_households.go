//go:build ignore

// gen_households derives sim/data/households.bin.gz from the shared SGSC
// household file: for each household the most complete 8-week window that
// starts on a Monday (preferring southern autumn and winter, whose heating
// load resembles a Kazakh October), half-hourly, in whole watt-hours. Gaps
// inside the window are filled from the same half-hour a week away, or the
// household's mean for that half-hour.
//
// Format (little endian): uint32 households, uint32 days, then per household
// uint32 id followed by days*48 uint16 Wh values.
//
//	go run gen_households.go -in ../../shared/data/households-sgsc50.csv.gz -out data/households.bin.gz
package main

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"sort"
	"strconv"
	"time"
)

const days = 56

func main() {
	in := flag.String("in", "../../shared/data/households-sgsc50.csv.gz", "shared household file")
	out := flag.String("out", "data/households.bin.gz", "output file")
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		log.Fatal(err)
	}
	r := csv.NewReader(bufio.NewReader(zr))
	r.ReuseRecord = true
	epoch := time.Date(2012, 1, 2, 0, 0, 0, 0, time.UTC) // a Monday
	data := map[uint32]map[int]float64{}                 // slot since epoch -> kWh
	if _, err := r.Read(); err != nil {
		log.Fatal(err)
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		id, err := strconv.ParseUint(rec[0], 10, 32)
		if err != nil {
			log.Fatal(err)
		}
		ts, err := time.Parse("2006-01-02T15:04:05", rec[1])
		if err != nil {
			log.Fatal(err)
		}
		kwh, err := strconv.ParseFloat(rec[2], 64)
		if err != nil {
			log.Fatal(err)
		}
		m := data[uint32(id)]
		if m == nil {
			m = map[int]float64{}
			data[uint32(id)] = m
		}
		m[int(ts.Sub(epoch)/(30*time.Minute))] = kwh
	}
	ids := make([]uint32, 0, len(data))
	for id := range data {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })

	o, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(o, gzip.BestCompression)
	w := bufio.NewWriter(zw)
	binary.Write(w, binary.LittleEndian, uint32(len(ids)))
	binary.Write(w, binary.LittleEndian, uint32(days))
	for _, id := range ids {
		m := data[id]
		lo, hi := math.MaxInt, 0
		for s := range m {
			lo, hi = min(lo, s), max(hi, s)
		}
		best, bestScore := 0, -1.0
		for start := (lo / 336) * 336; start+days*48 <= hi+1; start += 336 {
			n := 0
			for s := start; s < start+days*48; s++ {
				if _, ok := m[s]; ok {
					n++
				}
			}
			score := float64(n) / (days * 48)
			if mo := epoch.Add(time.Duration(start) * 30 * time.Minute).Month(); mo >= 4 && mo <= 7 {
				score += 0.005
			}
			if score > bestScore {
				best, bestScore = start, score
			}
		}
		var slotSum [48]float64
		var slotN [48]int
		for s := best; s < best+days*48; s++ {
			if v, ok := m[s]; ok {
				slotSum[s%48] += v
				slotN[s%48]++
			}
		}
		binary.Write(w, binary.LittleEndian, id)
		filled := 0
		for s := best; s < best+days*48; s++ {
			v, ok := m[s]
			if !ok {
				filled++
				if v, ok = m[s-336]; !ok {
					if v, ok = m[s+336]; !ok && slotN[s%48] > 0 {
						v = slotSum[s%48] / float64(slotN[s%48])
					}
				}
			}
			binary.Write(w, binary.LittleEndian, uint16(math.Min(math.Round(v*1000), 65000)))
		}
		fmt.Fprintf(os.Stderr, "%d from %s, %d of %d filled\n", id,
			epoch.Add(time.Duration(best)*30*time.Minute).Format("2006-01-02"), filled, days*48)
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := o.Close(); err != nil {
		log.Fatal(err)
	}
}
