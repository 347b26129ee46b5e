package sim

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rigwatch/rigwatch/schemas"
)

// Acceptance targets a detector must meet on a scenario.
const (
	TargetRecall      = 0.95
	TargetPrecision   = 0.95
	TargetEnergyError = 0.15
)

// TargetSuspectPrecision is the smallest acceptable mean share, over
// under-reporting incidents, of the first five suspects their alerts name
// that are truly under-reporting.
const TargetSuspectPrecision = 0.8

// TargetTTD is the largest acceptable median time to detect, per kind, in
// event time: for incidents whose onset the data shows (not under way when
// it starts), and for unregistered_load for round-the-clock mining only.
var TargetTTD = map[string]time.Duration{
	schemas.KindOverCapacity:     6 * time.Hour,
	schemas.KindUnregisteredLoad: 6 * time.Hour,
	schemas.KindFeederImbalance:  24 * time.Hour,
}

// energyKinds are the kinds whose truth carries an excess energy to compare.
var energyKinds = map[string]bool{
	schemas.KindOverCapacity: true, schemas.KindUnregisteredLoad: true,
	schemas.KindFeederImbalance: true, schemas.KindPurchaseShortfall: true,
}

// ScoreOptions tunes Score. The zero value is the acceptance setting.
type ScoreOptions struct {
	// Slack widens every truth window on both sides before matching windows.
	Slack time.Duration
}

// KindReport is the score of one alert kind.
type KindReport struct {
	Kind      string `json:"kind"`
	Incidents int    `json:"incidents"`
	Alerts    int    `json:"alerts"`
	// Detected counts incidents matched by at least one alert; Matching counts
	// alerts that match some incident.
	Detected  int     `json:"detected"`
	Matching  int     `json:"matching_alerts"`
	Recall    float64 `json:"recall"`
	Precision float64 `json:"precision"`
	// MedianTTD is over every detected incident; TargetedTTD only over those
	// the time-to-detect target applies to (TTDCount of them).
	MedianTTD   time.Duration `json:"median_ttd_ns"`
	TargetedTTD time.Duration `json:"targeted_median_ttd_ns"`
	TTDCount    int           `json:"targeted_ttd_count"`
	// MedianEnergyError is the median of |max alert excess - true excess| /
	// true excess over detected incidents with energy (EnergyCount of them);
	// an alert without excess_kwh counts as an error of 1.
	MedianEnergyError float64 `json:"median_energy_error"`
	EnergyCount       int     `json:"energy_count"`
	// SuspectPrecision is the mean, over detected incidents that name the
	// meters under-reporting (SuspectCount of them), of the share of the
	// alert's first five suspect_meters (or as many as the incident has
	// meters) that are among them.
	SuspectPrecision float64 `json:"suspect_precision"`
	SuspectCount     int     `json:"suspect_count"`
}

// Report is the score of a detector run, one entry per kind in
// schemas.AlertKinds order, then any other kinds met.
type Report struct {
	Kinds []KindReport `json:"kinds"`
}

// Kind returns the report of kind k, zero if absent.
func (r Report) Kind(k string) KindReport {
	for _, x := range r.Kinds {
		if x.Kind == k {
			return x
		}
	}
	return KindReport{Kind: k}
}

// informational kinds are findings that are not theft. A scenario that
// plants none of them may still show some, rightly: a meter that
// under-reports by repeating one value is also a stuck reading. Their
// precision counts only where the scenario plants them.
var informational = map[string]bool{schemas.KindDataQuality: true}

// Failures lists the acceptance targets the run misses, empty when it passes.
func (r Report) Failures() []string {
	var out []string
	for _, k := range r.Kinds {
		if informational[k.Kind] && k.Incidents == 0 {
			continue
		}
		if k.Recall < TargetRecall {
			out = append(out, fmt.Sprintf("%s: recall %.3f < %.2f", k.Kind, k.Recall, TargetRecall))
		}
		if k.Precision < TargetPrecision {
			out = append(out, fmt.Sprintf("%s: precision %.3f < %.2f", k.Kind, k.Precision, TargetPrecision))
		}
		if tgt, ok := TargetTTD[k.Kind]; ok && k.TTDCount > 0 && k.TargetedTTD > tgt {
			out = append(out, fmt.Sprintf("%s: median time to detect %s > %s", k.Kind, k.TargetedTTD, tgt))
		}
		if energyKinds[k.Kind] && k.EnergyCount > 0 && k.MedianEnergyError > TargetEnergyError {
			out = append(out, fmt.Sprintf("%s: median energy error %.3f > %.2f", k.Kind, k.MedianEnergyError, TargetEnergyError))
		}
		if k.SuspectCount > 0 && k.SuspectPrecision < TargetSuspectPrecision {
			out = append(out, fmt.Sprintf("%s: suspect precision %.3f < %.2f", k.Kind, k.SuspectPrecision, TargetSuspectPrecision))
		}
	}
	return out
}

// Score compares alerts with the truth, kind by kind. An alert matches an
// incident of its kind when it names the incident's entity or a related one
// and its window overlaps the incident's. Alerts sharing an alert_id are one
// alert (its last version, first detected_at).
func Score(truth []Truth, alerts []schemas.Alert, opts ScoreOptions) Report {
	alerts = dedupAlerts(alerts)
	kinds := slices.Clone(schemas.AlertKinds)
	for _, a := range alerts {
		if !slices.Contains(kinds, a.Kind) {
			kinds = append(kinds, a.Kind)
		}
	}
	var rep Report
	for _, kind := range kinds {
		kr := KindReport{Kind: kind}
		var ts []*Truth
		for i := range truth {
			if truth[i].Kind == kind {
				ts = append(ts, &truth[i])
			}
		}
		var as []*schemas.Alert
		for i := range alerts {
			if alerts[i].Kind == kind {
				as = append(as, &alerts[i])
			}
		}
		kr.Incidents, kr.Alerts = len(ts), len(as)
		byID := map[string][]int{}
		for i, t := range ts {
			for _, id := range t.ids() {
				byID[id] = append(byID[id], i)
			}
		}
		matched := make([][]*schemas.Alert, len(ts))
		for _, a := range as {
			hit := false
			for _, i := range byID[a.EntityID] {
				if overlaps(a, ts[i], opts.Slack) {
					matched[i] = append(matched[i], a)
					hit = true
				}
			}
			if hit {
				kr.Matching++
			}
		}
		var ttd, targeted []time.Duration
		var eerr, sprec []float64
		for i, t := range ts {
			if len(matched[i]) == 0 {
				continue
			}
			kr.Detected++
			first := detectedAt(matched[i][0])
			// An incident's energy is what its alerts report together:
			// the episodes of one finding cover disjoint windows. A
			// shortfall is a balance, not a flow: its largest counts.
			maxEx := math.Inf(-1)
			var best *schemas.Alert
			for _, a := range matched[i] {
				if d := detectedAt(a); d.Before(first) {
					first = d
				}
				if a.ExcessKWh != nil {
					switch {
					case kind == schemas.KindPurchaseShortfall:
						maxEx = math.Max(maxEx, *a.ExcessKWh)
					case math.IsInf(maxEx, -1):
						maxEx = *a.ExcessKWh
					default:
						maxEx += *a.ExcessKWh
					}
					if best == nil || best.ExcessKWh == nil || *a.ExcessKWh > *best.ExcessKWh {
						best = a
					}
				}
			}
			if len(t.Suspects) > 0 {
				sprec = append(sprec, suspectPrecision(t.Suspects, best))
			}
			d := first.Sub(t.Start)
			ttd = append(ttd, d)
			if _, ok := TargetTTD[kind]; ok && t.targetTTD() {
				targeted = append(targeted, d)
			}
			if energyKinds[kind] && t.ExcessKWh != nil && *t.ExcessKWh > 0 {
				e := 1.0
				if !math.IsInf(maxEx, -1) {
					e = math.Abs(maxEx-*t.ExcessKWh) / *t.ExcessKWh
				}
				eerr = append(eerr, e)
			}
		}
		kr.Recall, kr.Precision = ratio(kr.Detected, kr.Incidents), ratio(kr.Matching, kr.Alerts)
		kr.MedianTTD, kr.TargetedTTD, kr.TTDCount = medianDuration(ttd), medianDuration(targeted), len(targeted)
		kr.MedianEnergyError, kr.EnergyCount = median(eerr), len(eerr)
		if len(sprec) > 0 {
			var sum float64
			for _, p := range sprec {
				sum += p
			}
			kr.SuspectPrecision, kr.SuspectCount = sum/float64(len(sprec)), len(sprec)
		}
		rep.Kinds = append(rep.Kinds, kr)
	}
	return rep
}

// topSuspects is how many first suspects SuspectPrecision judges: the
// doors an investigator knocks on first.
const topSuspects = 5

// suspectPrecision returns the share of the first min(5, len(want))
// suspects alert a names that are among the meters want.
func suspectPrecision(want []string, a *schemas.Alert) float64 {
	if a == nil {
		return 0
	}
	var got []schemas.SuspectMeter
	b, err := json.Marshal(a.Evidence["suspect_meters"])
	if err != nil || json.Unmarshal(b, &got) != nil {
		return 0
	}
	n := min(topSuspects, len(want))
	hit := 0
	for i := 0; i < len(got) && i < n; i++ {
		if slices.Contains(want, got[i].MeterID) {
			hit++
		}
	}
	return float64(hit) / float64(n)
}

// ratio is n/d, or 1 when there is nothing to count: no incidents to find
// means full recall, no alerts means full precision.
func ratio(n, d int) float64 {
	if d == 0 {
		return 1
	}
	return float64(n) / float64(d)
}

func detectedAt(a *schemas.Alert) time.Time {
	switch {
	case !a.DetectedAt.IsZero():
		return a.DetectedAt
	case !a.WindowEnd.IsZero():
		return a.WindowEnd
	}
	return a.WindowStart
}

func overlaps(a *schemas.Alert, t *Truth, slack time.Duration) bool {
	from, to := a.WindowStart, a.WindowEnd
	if from.IsZero() {
		from = detectedAt(a)
	}
	if to.IsZero() || to.Before(from) {
		to = from
	}
	return !from.After(t.End.Add(slack)) && !to.Before(t.Start.Add(-slack))
}

func dedupAlerts(in []schemas.Alert) []schemas.Alert {
	idx := map[string]int{}
	var out []schemas.Alert
	for _, a := range in {
		if a.AlertID == "" {
			out = append(out, a)
			continue
		}
		i, ok := idx[a.AlertID]
		if !ok {
			idx[a.AlertID] = len(out)
			out = append(out, a)
			continue
		}
		first := out[i].DetectedAt
		if a.DetectedAt.IsZero() || (!first.IsZero() && first.Before(a.DetectedAt)) {
			a.DetectedAt = first
		}
		out[i] = a
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func medianDuration(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Format writes the report as a table, one row per kind, marking the rows that
// miss an acceptance target.
func (r Report) Format(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tincidents\talerts\tdetected\trecall\tprecision\tmedian ttd\ttarget ttd\tenergy err\tsuspects\tresult\t")
	fails := r.Failures()
	for _, k := range r.Kinds {
		res := "ok"
		for _, f := range fails {
			if strings.HasPrefix(f, k.Kind+":") {
				res = "FAIL"
			}
		}
		ttd, tgt, ee := "-", "-", "-"
		if k.Detected > 0 {
			ttd = fmtDuration(k.MedianTTD)
		}
		if k.TTDCount > 0 {
			tgt = fmtDuration(k.TargetedTTD)
		}
		if k.EnergyCount > 0 {
			ee = fmt.Sprintf("%.3f", k.MedianEnergyError)
		}
		sp := "-"
		if k.SuspectCount > 0 {
			sp = fmt.Sprintf("%.3f", k.SuspectPrecision)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.3f\t%.3f\t%s\t%s\t%s\t%s\t%s\t\n", k.Kind, k.Incidents, k.Alerts, k.Detected,
			k.Recall, k.Precision, ttd, tgt, ee, sp, res)
	}
	return tw.Flush()
}

func fmtDuration(d time.Duration) string {
	if d < 0 {
		return "-" + fmtDuration(-d)
	}
	return fmt.Sprintf("%.1fh", d.Hours())
}

// LoadTruth reads a truth file: JSON Lines, gzip-compressed if named .gz.
func LoadTruth(path string) ([]Truth, error) {
	var out []Truth
	err := readJSONLines(path, func(b []byte) error {
		var t Truth
		if err := json.Unmarshal(b, &t); err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

// LoadAlerts reads an alerts file as rigwatch --alerts-out writes it: JSON
// Lines, gzip-compressed if named .gz.
func LoadAlerts(path string) ([]schemas.Alert, error) {
	var out []schemas.Alert
	err := readJSONLines(path, func(b []byte) error {
		var a schemas.Alert
		if err := json.Unmarshal(b, &a); err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

func readJSONLines(path string, f func([]byte) error) error {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer file.Close()
	var r io.Reader = file
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(file)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		if err := f(b); err != nil {
			return fmt.Errorf("cannot decode %s line %d: %w", path, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	return nil
}

// targetTTD reports whether the time-to-detect target applies to t: its
// onset lies inside the data (theft under way before the data starts has
// no onset to detect), and for unregistered_load it runs round the clock.
func (t *Truth) targetTTD() bool {
	if t.AtStart {
		return false
	}
	return t.Kind != schemas.KindUnregisteredLoad || t.Pattern == patternRoundClock
}
