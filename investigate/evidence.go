package investigate

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rigwatch/rigwatch/registry"
	"github.com/rigwatch/rigwatch/schemas"
)

// ManifestName is the file of an evidence bundle that holds the SHA-256 of
// every other file, in the format of sha256sum (so `sha256sum -c
// manifest.sha256` checks it too).
const ManifestName = "manifest.sha256"

// Bundle is an evidence bundle: the files that let a third party check an
// alert. It is built in memory; files are kept in name order.
type Bundle struct {
	AlertID string
	files   map[string][]byte
}

// Names returns the bundle's file names, sorted, manifest included.
func (b *Bundle) Names() []string {
	out := make([]string, 0, len(b.files))
	for n := range b.files {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// File returns one file's content.
func (b *Bundle) File(name string) []byte { return b.files[name] }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// DirName is the directory (or archive) name for the bundle.
func (b *Bundle) DirName() string {
	n := unsafeName.ReplaceAllString(b.AlertID, "_")
	if len(n) > 100 {
		n = n[:100]
	}
	return "evidence-" + n
}

func (b *Bundle) seal() {
	var m strings.Builder
	for _, n := range b.Names() {
		if n == ManifestName {
			continue
		}
		sum := sha256.Sum256(b.files[n])
		fmt.Fprintf(&m, "%s  %s\n", hex.EncodeToString(sum[:]), n)
	}
	b.files[ManifestName] = []byte(m.String())
}

// WriteDir writes the bundle's files into dir, creating it.
func (b *Bundle) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create evidence directory: %w", err)
	}
	for _, n := range b.Names() {
		if err := os.WriteFile(filepath.Join(dir, n), b.files[n], 0o644); err != nil {
			return fmt.Errorf("cannot write evidence file: %w", err)
		}
	}
	return nil
}

// WriteZip writes the bundle as a zip archive of one directory.
func (b *Bundle) WriteZip(w io.Writer) error {
	zw := zip.NewWriter(w)
	for _, n := range b.Names() {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: b.DirName() + "/" + n, Method: zip.Deflate, Modified: time.Now().UTC()})
		if err != nil {
			return err
		}
		if _, err := f.Write(b.files[n]); err != nil {
			return err
		}
	}
	return zw.Close()
}

// WriteTarGz writes the bundle as a gzip-compressed tar of one directory.
func (b *Bundle) WriteTarGz(w io.Writer) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	now := time.Now().UTC()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: b.DirName() + "/", Mode: 0o755, ModTime: now}); err != nil {
		return err
	}
	for _, n := range b.Names() {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: b.DirName() + "/" + n, Mode: 0o644, Size: int64(len(b.files[n])), ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(b.files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// VerifyError lists the files of a bundle that do not match its manifest.
type VerifyError struct {
	Dir      string
	Problems []string // "FILE: reason"
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("evidence bundle %s does not verify: %s", e.Dir, strings.Join(e.Problems, "; "))
}

// VerifyDir checks an evidence directory against its manifest: every
// listed file present with its SHA-256, and no unlisted file. The error, a
// *VerifyError, names every file that fails.
func VerifyDir(dir string) error {
	man, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return fmt.Errorf("cannot read the manifest of %s: %w", dir, err)
	}
	ve := &VerifyError{Dir: dir}
	listed := map[string]bool{ManifestName: true}
	sc := bufio.NewScanner(bytes.NewReader(man))
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" {
			continue
		}
		sum, name, ok := strings.Cut(text, "  ")
		if !ok || len(sum) != 64 || name == "" || strings.ContainsAny(name, `/\`) || name == ".." {
			ve.Problems = append(ve.Problems, fmt.Sprintf("%s: line %d is malformed", ManifestName, line))
			continue
		}
		listed[name] = true
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			ve.Problems = append(ve.Problems, name+": missing")
			continue
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != strings.ToLower(sum) {
			ve.Problems = append(ve.Problems, name+": SHA-256 does not match the manifest")
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cannot list %s: %w", dir, err)
	}
	for _, e := range ents {
		if !listed[e.Name()] {
			ve.Problems = append(ve.Problems, e.Name()+": not in the manifest")
		}
	}
	if len(ve.Problems) > 0 {
		return ve
	}
	return nil
}

// evidenceMargin is how far around the alert window the readings go.
func evidenceMargin(from, to time.Time) time.Duration {
	m := to.Sub(from) / 10
	return min(max(m, time.Hour), 7*24*time.Hour)
}

// registryState is registry.json: the registry as it stood at the end of
// the alert window, for the entities the alert involves.
type registryState struct {
	At       time.Time               `json:"at"`
	Licences []LicenceState          `json:"licences"`
	Rigs     []schemas.Rig           `json:"rigs"`
	Meters   []schemas.Meter         `json:"meters"`
	Sites    map[string]siteRegistry `json:"sites"`
	Note     string                  `json:"note,omitempty"`
}

type siteRegistry struct {
	Fleet    registry.Fleet  `json:"fleet_at_window_end"`
	Capacity []registry.Step `json:"capacity_changes_in_window"`
}

// Evidence builds the evidence bundle of an alert: alert.json,
// readings.csv (the meters involved over the window plus a margin),
// purchases.csv (operator and site alerts), registry.json,
// computation.json, report.md and manifest.sha256.
func (q *Queries) Evidence(ctx context.Context, alertID, who string) (*Bundle, error) {
	a, err := q.Store.GetAlert(ctx, alertID)
	if err != nil {
		return nil, err
	}
	b := &Bundle{AlertID: a.AlertID, files: map[string][]byte{}}
	at := a.WindowEnd
	margin := evidenceMargin(a.WindowStart, a.WindowEnd)
	from, to := a.WindowStart.Add(-margin), a.WindowEnd.Add(margin)

	reg := registryState{At: at, Licences: []LicenceState{}, Rigs: []schemas.Rig{}, Meters: []schemas.Meter{}, Sites: map[string]siteRegistry{}}
	meterSet := map[string]bool{}
	if a.MeterID != "" {
		meterSet[a.MeterID] = true
	}
	sites := map[string]bool{}
	if a.SiteID != "" {
		sites[a.SiteID] = true
	}
	ix := q.Registry
	if ix == nil {
		reg.Note = "the registry was not loaded when this bundle was made"
	} else {
		if a.FeederID != "" {
			for _, m := range ix.FeederMeters(a.FeederID, at) {
				meterSet[m.MeterID] = true
			}
		}
		if a.MeterID != "" {
			if m, ok := ix.MeterAt(a.MeterID, at); ok && m.SiteID != "" {
				sites[m.SiteID] = true
			}
		}
		if a.OperatorID != "" && a.EntityType == schemas.EntityOperator {
			for _, s := range ix.OperatorSites(a.OperatorID) {
				sites[s] = true
			}
		}
		licIDs := map[string]bool{}
		if a.LicenseID != "" {
			licIDs[a.LicenseID] = true
		}
		if a.OperatorID != "" {
			for _, l := range ix.OperatorLicenses(a.OperatorID, at) {
				licIDs[l.LicenseID] = true
			}
		}
		rigSeen := map[string]bool{}
		for _, s := range sortedKeys(sites) {
			for _, m := range ix.SiteMeters(s, at) {
				meterSet[m.MeterID] = true
			}
			for _, r := range activeRigs(ix, s, at) {
				rigSeen[r.RigID] = true
				reg.Rigs = append(reg.Rigs, r)
				licIDs[r.LicenseID] = true
			}
			reg.Sites[s] = siteRegistry{Fleet: ix.SiteFleet(s, at), Capacity: ix.CapacityChanges(s, a.WindowStart, a.WindowEnd)}
		}
		if a.RigID != "" && !rigSeen[a.RigID] {
			if r, ok := ix.RigAt(a.RigID, at); ok {
				reg.Rigs = append(reg.Rigs, r)
				licIDs[r.LicenseID] = true
			}
		}
		reg.Licences = licenceStates(ix, sortedKeys(licIDs), at)
		for _, id := range sortedKeys(meterSet) {
			if m, ok := ix.MeterAt(id, at); ok {
				reg.Meters = append(reg.Meters, m)
			}
		}
	}
	meters := sortedKeys(meterSet)

	// readings.csv
	var rb bytes.Buffer
	cw := csv.NewWriter(&rb)
	_ = cw.Write([]string{"meter_id", "ts", "kwh", "interval_s"})
	nReadings := 0
	if err := q.Store.EachReading(ctx, meters, from, to, func(r schemas.Reading) error {
		nReadings++
		return cw.Write([]string{r.MeterID, r.TS.UTC().Format(time.RFC3339), strconv.FormatFloat(r.KWh, 'f', -1, 64), strconv.Itoa(int(r.IntervalS))})
	}); err != nil {
		return nil, err
	}
	cw.Flush()
	b.files["readings.csv"] = rb.Bytes()

	// purchases.csv
	if a.OperatorID != "" || a.TxID != "" {
		ps, err := q.Store.OperatorPurchases(ctx, a.OperatorID, "", from, to)
		if err != nil {
			return nil, err
		}
		var pb bytes.Buffer
		pw := csv.NewWriter(&pb)
		_ = pw.Write([]string{"tx_id", "operator_id", "site_id", "mwh", "price_kzt_per_mwh", "ts"})
		for _, p := range ps {
			price := ""
			if p.PriceKZTPerMWh != nil {
				price = strconv.FormatFloat(*p.PriceKZTPerMWh, 'f', -1, 64)
			}
			_ = pw.Write([]string{p.TxID, p.OperatorID, p.SiteID, strconv.FormatFloat(p.MWh, 'f', -1, 64), price, p.TS.UTC().Format(time.RFC3339)})
		}
		pw.Flush()
		b.files["purchases.csv"] = pb.Bytes()
	}

	// Per-meter totals over the exact window: what a reader of
	// readings.csv should find again.
	totals, err := q.Store.MeterTotals(ctx, meters, a.WindowStart, a.WindowEnd)
	if err != nil {
		return nil, err
	}
	type meterSum struct {
		Readings uint64  `json:"readings"`
		KWh      float64 `json:"kwh"`
	}
	sums := map[string]meterSum{}
	for _, id := range meters {
		sums[id] = meterSum{Readings: totals[id].Rows, KWh: totals[id].KWh}
	}
	now := time.Now().UTC().Truncate(time.Second)
	comp := map[string]any{
		"alert_id":               a.AlertID,
		"kind":                   a.Kind,
		"rigwatch_version":       q.Version,
		"generated_at":           now,
		"generated_by":           who,
		"parameters":             a.Evidence,
		"window":                 map[string]any{"start": a.WindowStart, "end": a.WindowEnd, "readings_from": from, "readings_to": to, "margin": margin.String(), "convention": "a reading counts in (start, end] by its ts, the END of its interval; only the latest version of each (meter_id, ts) is included"},
		"tariff_kzt_per_kwh":     q.TariffKZTPerKWh,
		"figures":                map[string]any{"observed_kwh": a.ObservedKWh, "expected_kwh": a.ExpectedKWh, "excess_kwh": a.ExcessKWh, "estimated_value_kzt": a.EstimatedValueKZT, "score": a.Score},
		"meter_totals_in_window": sums,
		"readings_in_file":       nReadings,
	}
	for name, v := range map[string]any{"alert.json": a, "registry.json": reg, "computation.json": comp} {
		j, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("cannot encode %s: %w", name, err)
		}
		b.files[name] = append(j, '\n')
	}
	b.files["report.md"] = []byte(report(&a, &reg, meters, nReadings, from, to, q.Version, who, now))
	b.seal()
	return b, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func fnum(p *float64, unit string) string {
	if p == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*p, 'f', 1, 64) + " " + unit
}

// mdSafe keeps stored text from forming Markdown structure in the report.
func mdSafe(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ", "|", "\\|", "`", "'", "<", "&lt;", ">", "&gt;").Replace(s)
}

func report(a *schemas.Alert, reg *registryState, meters []string, nReadings int, from, to time.Time, version, who string, now time.Time) string {
	var s strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&s, format, args...) }
	w("# Evidence: %s alert %s\n\n", mdSafe(a.Kind), mdSafe(a.AlertID))
	w("%s\n\n", mdSafe(a.Summary))
	w("| | |\n|---|---|\n")
	w("| What | %s (%s severity), status %s |\n", mdSafe(a.Kind), mdSafe(a.Severity), mdSafe(a.Status))
	w("| About | %s %s |\n", mdSafe(a.EntityType), mdSafe(a.EntityID))
	where := []string{}
	for _, kv := range [][2]string{{"oblast", a.Oblast}, {"feeder", a.FeederID}, {"meter", a.MeterID}, {"site", a.SiteID}, {"operator", a.OperatorID}, {"licence", a.LicenseID}, {"rig", a.RigID}, {"transaction", a.TxID}} {
		if kv[1] != "" {
			where = append(where, kv[0]+" "+mdSafe(kv[1]))
		}
	}
	w("| Where | %s |\n", strings.Join(where, ", "))
	w("| Since | %s (finding first held at %s) |\n", a.WindowStart.Format(time.RFC3339), a.DetectedAt.Format(time.RFC3339))
	w("| Until | %s |\n", a.WindowEnd.Format(time.RFC3339))
	w("| How much | observed %s, expected %s, excess %s |\n", fnum(a.ObservedKWh, "kWh"), fnum(a.ExpectedKWh, "kWh"), fnum(a.ExcessKWh, "kWh"))
	w("| Worth | %s |\n", fnum(a.EstimatedValueKZT, "KZT"))
	w("| Score | %.3f |\n\n", a.Score)
	w("## Files\n\n")
	w("- `alert.json`: the alert as stored.\n")
	w("- `readings.csv`: %d readings of %d meters from %s to %s (the window plus a margin), latest version of each.\n", nReadings, len(meters), from.Format(time.RFC3339), to.Format(time.RFC3339))
	w("- `registry.json`: the registry at %s: %d licences, %d active rigs, %d meters.\n", reg.At.Format(time.RFC3339), len(reg.Licences), len(reg.Rigs), len(reg.Meters))
	w("- `computation.json`: the figures behind the finding with their parameters, and per-meter totals over the window.\n")
	w("- `manifest.sha256`: SHA-256 of every file; check with `rigwatch evidence verify DIR` or `sha256sum -c manifest.sha256`.\n\n")
	if len(reg.Licences) > 0 {
		w("## Licences at the end of the window\n\n| licence | operator | status | valid | in force |\n|---|---|---|---|---|\n")
		for _, l := range reg.Licences {
			w("| %s | %s | %s | %s to %s | %v |\n", mdSafe(l.LicenseID), mdSafe(l.OperatorID), mdSafe(l.Status), l.ValidFrom.Format("2006-01-02"), l.ValidTo.Format("2006-01-02"), l.InForce)
		}
		w("\n")
	}
	w("Generated %s by %s with rigwatch %s.\n", now.Format(time.RFC3339), mdSafe(who), mdSafe(version))
	return s.String()
}
