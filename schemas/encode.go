package schemas

import (
	"bufio"
	"encoding/csv"
	"io"
	"strconv"
	"time"
)

func csvTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func csvNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func csvOpt(v *float64) string {
	if v == nil {
		return ""
	}
	return csvNum(*v)
}

// CSVRow returns l as a replay-file row, in the order of Fields(Licenses).
func (l *License) CSVRow() []string {
	return []string{l.LicenseID, l.OperatorID, l.OperatorName, l.Status, csvTime(l.ValidFrom), csvTime(l.ValidTo), csvOpt(l.LicensedCapacityKW), csvTime(l.UpdatedAt)}
}

// CSVRow returns r as a replay-file row, in the order of Fields(Rigs).
func (r *Rig) CSVRow() []string {
	return []string{r.RigID, r.Serial, r.Model, csvNum(r.RatedPowerW), csvOpt(r.HashrateTHs), r.OperatorID, r.LicenseID, r.SiteID, r.Status, csvTime(r.UpdatedAt)}
}

// CSVRow returns m as a replay-file row, in the order of Fields(Meters).
func (m *Meter) CSVRow() []string {
	return []string{m.MeterID, m.FeederID, m.Role, m.Class, m.SiteID, m.Oblast, csvTime(m.UpdatedAt)}
}

// CSVRow returns r as a replay-file row, in the order of Fields(Readings).
func (r *Reading) CSVRow() []string {
	iv := ""
	if r.IntervalS != 0 {
		iv = strconv.Itoa(int(r.IntervalS))
	}
	return []string{r.MeterID, csvTime(r.TS), csvNum(r.KWh), iv}
}

// CSVRow returns p as a replay-file row, in the order of Fields(Purchases).
func (p *Purchase) CSVRow() []string {
	return []string{p.TxID, p.OperatorID, p.SiteID, csvNum(p.MWh), csvOpt(p.PriceKZTPerMWh), csvTime(p.TS)}
}

// WriteCSV writes n records of stream s to w as a replay file: the header
// of Fields(s), then row(i) for each record (a CSVRow).
func WriteCSV(w io.Writer, s Stream, n int, row func(i int) []string) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	cw := csv.NewWriter(bw)
	if err := cw.Write(Fields(s)); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := cw.Write(row(i)); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}
