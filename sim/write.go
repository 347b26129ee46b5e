package sim

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// WriteOptions tunes WriteDir. Zero values mean defaults.
type WriteOptions struct {
	// GzipLevel compresses the readings files; 0 means gzip.BestSpeed.
	GzipLevel int
	// Workers writes that many readings files at once; 0 means 2.
	Workers int
}

// Summary describes what WriteDir wrote.
type Summary struct {
	Dir       string         `json:"-"`
	Files     []string       `json:"files"`
	Start     time.Time      `json:"start"`
	End       time.Time      `json:"end"`
	IntervalS int            `json:"interval_s"`
	Steps     int            `json:"steps"`
	Feeders   int            `json:"feeders"`
	Meters    int            `json:"meters"`
	Sites     int            `json:"sites"`
	Operators int            `json:"operators"`
	Licenses  int            `json:"license_records"`
	Rigs      int            `json:"rig_records"`
	Purchases int            `json:"purchases"`
	Readings  int64          `json:"readings"`
	Incidents int            `json:"incidents"`
	ByKind    map[string]int `json:"incidents_by_kind"`
}

// File names WriteDir uses; readings go to readings-0001.csv.gz and on, one
// file per scenario day, to be read in name order.
const (
	LicensesFile  = "licenses.csv"
	MetersFile    = "meters.csv"
	RigsFile      = "rigs.csv"
	PurchasesFile = "purchases.csv"
	TruthFile     = "truth.jsonl"
	ScenarioFile  = "scenario.json"
)

// ReadingsFile returns the name of the readings file of day d, from 0.
func ReadingsFile(d int) string { return fmt.Sprintf("readings-%04d.csv.gz", d+1) }

// WriteDir writes the scenario into dir as contract replay files plus its
// ground truth (truth.jsonl) and description (scenario.json).
func WriteDir(ctx context.Context, s *Scenario, dir string, opts WriteOptions) (Summary, error) {
	if opts.GzipLevel == 0 {
		opts.GzipLevel = gzip.BestSpeed
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Summary{}, fmt.Errorf("cannot create scenario directory: %w", err)
	}
	sum := Summary{Dir: dir, Start: s.Start(), End: s.End(), IntervalS: s.ivS, Steps: s.steps, Feeders: len(s.feeders),
		Meters: len(s.meters), Sites: len(s.sites), Licenses: len(s.licenses), Rigs: len(s.rigs),
		Purchases: len(s.purchases), Incidents: len(s.truth), ByKind: map[string]int{}}
	ops := map[string]bool{}
	for _, l := range s.licenses {
		ops[l.OperatorID] = true
	}
	sum.Operators = len(ops)
	for _, t := range s.truth {
		sum.ByKind[t.Kind]++
	}
	err := writeCSV(filepath.Join(dir, LicensesFile), schemas.Licenses, len(s.licenses), func(i int) []string { return s.licenses[i].CSVRow() })
	if err == nil {
		err = writeCSV(filepath.Join(dir, MetersFile), schemas.Meters, len(s.meterRecs), func(i int) []string { return s.meterRecs[i].CSVRow() })
	}
	if err == nil {
		err = writeCSV(filepath.Join(dir, RigsFile), schemas.Rigs, len(s.rigs), func(i int) []string { return s.rigs[i].CSVRow() })
	}
	if err == nil {
		err = writeCSV(filepath.Join(dir, PurchasesFile), schemas.Purchases, len(s.purchases), func(i int) []string { return s.purchases[i].CSVRow() })
	}
	if err != nil {
		return sum, err
	}
	sum.Files = append(sum.Files, LicensesFile, MetersFile, RigsFile, PurchasesFile)

	n, files, err := writeReadings(ctx, s, dir, opts)
	if err != nil {
		return sum, err
	}
	sum.Readings = n
	sum.Files = append(sum.Files, files...)

	if err := writeJSONLines(filepath.Join(dir, TruthFile), s.truth); err != nil {
		return sum, err
	}
	sum.Files = append(sum.Files, TruthFile, ScenarioFile)
	desc := struct {
		Generator string   `json:"generator"`
		Seed      int64    `json:"seed"`
		Days      int      `json:"days"`
		Rigs      int      `json:"rigs_requested"`
		Incidents []string `json:"incident_kinds"`
		Summary
	}{"rigwatch/sim", s.cfg.Seed, s.cfg.Days, s.cfg.Rigs, s.cfg.Incidents, sum}
	b, err := json.MarshalIndent(desc, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, ScenarioFile), append(b, '\n'), 0o644)
	}
	if err != nil {
		return sum, fmt.Errorf("cannot write %s: %w", ScenarioFile, err)
	}
	return sum, nil
}

// writeCSV writes n records of stream st to path as a replay file.
func writeCSV(path string, st schemas.Stream, n int, row func(int) []string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	err = schemas.WriteCSV(f, st, n, row)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// writeJSONLines writes one JSON object per line.
func writeJSONLines(path string, truth []Truth) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", path, err)
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for i := range truth {
		if err = enc.Encode(&truth[i]); err != nil {
			break
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// writeReadings writes one gzip CSV file per scenario day, several at once.
func writeReadings(ctx context.Context, s *Scenario, dir string, opts WriteOptions) (int64, []string, error) {
	spd := s.StepsPerDay()
	nFiles := (s.steps + spd - 1) / spd
	files := make([]string, nFiles)
	counts := make([]int64, nFiles)
	errs := make([]error, nFiles)
	next := make(chan int)
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rs []schemas.Reading
			for d := range next {
				files[d] = ReadingsFile(d)
				counts[d], errs[d] = writeReadingsFile(ctx, s, filepath.Join(dir, files[d]), d*spd, min(s.steps, (d+1)*spd), opts.GzipLevel, &rs)
			}
		}()
	}
	for d := 0; d < nFiles; d++ {
		next <- d
	}
	close(next)
	wg.Wait()
	var total int64
	for d := range nFiles {
		if errs[d] != nil {
			return 0, nil, errs[d]
		}
		total += counts[d]
	}
	return total, files, nil
}

func writeReadingsFile(ctx context.Context, s *Scenario, path string, from, to, level int, rs *[]schemas.Reading) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("cannot create %s: %w", path, err)
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, level)
	if err != nil {
		return 0, fmt.Errorf("cannot compress %s: %w", path, err)
	}
	bw := bufio.NewWriterSize(zw, 1<<18)
	bw.WriteString("meter_id,ts,kwh,interval_s\n")
	var n int64
	line := make([]byte, 0, 128)
	for step := from; step < to; step++ {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("cannot finish %s: %w", path, err)
		}
		*rs = s.ReadingsAt(step, *rs)
		stamp := s.stepTime(step + 1).Format(time.RFC3339)
		for i := range *rs {
			r := &(*rs)[i]
			line = append(line[:0], r.MeterID...)
			line = append(line, ',')
			line = append(line, stamp...)
			line = append(line, ',')
			line = strconv.AppendFloat(line, r.KWh, 'f', -1, 64)
			line = append(line, ',')
			line = strconv.AppendInt(line, int64(r.IntervalS), 10)
			line = append(line, '\n')
			bw.Write(line)
		}
		n += int64(len(*rs))
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := zw.Close(); err != nil {
		return n, fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return n, fmt.Errorf("cannot write %s: %w", path, err)
	}
	return n, nil
}
