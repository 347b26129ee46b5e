package schemas

import (
	"bytes"
	"encoding/csv"
	"reflect"
	"testing"
	"time"
)

// TestCSVRoundTrip writes records with WriteCSV and reads them back with
// the replay decoder: every field survives, absent optional ones included.
func TestCSVRoundTrip(t *testing.T) {
	at := time.Date(2025, 10, 1, 5, 15, 0, 0, time.UTC)
	capKW, hash, price := 500.5, 100.0, 28500.0
	check := func(s Stream, n int, row func(int) []string, got func(*Batch) any, want any) {
		t.Helper()
		var buf bytes.Buffer
		if err := WriteCSV(&buf, s, n, row); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewCSVDecoder(s, rows[0])
		if err != nil {
			t.Fatal(err)
		}
		var b Batch
		for _, r := range rows[1:] {
			if err := d.Decode(r, &b); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		if g := got(&b); !reflect.DeepEqual(g, want) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", s, g, want)
		}
	}
	ls := []License{
		{LicenseID: "L1", OperatorID: "O1", OperatorName: "Ertis, \"Hash\" LLP", Status: LicenseActive, ValidFrom: at, ValidTo: at.AddDate(2, 0, 0), LicensedCapacityKW: &capKW, UpdatedAt: at},
		{LicenseID: "L2", OperatorID: "O2", Status: LicenseRevoked, ValidFrom: at, ValidTo: at.AddDate(1, 0, 0), UpdatedAt: at},
	}
	check(Licenses, len(ls), func(i int) []string { return ls[i].CSVRow() }, func(b *Batch) any { return b.Licenses }, ls)
	rs := []Rig{{RigID: "R1", Serial: "S1", Model: "Antminer S19j Pro", RatedPowerW: 3068.5, HashrateTHs: &hash, OperatorID: "O1", LicenseID: "L1", SiteID: "X", Status: RigActive, UpdatedAt: at},
		{RigID: "R2", Serial: "S2", RatedPowerW: 3250, OperatorID: "O1", LicenseID: "L1", SiteID: "X", Status: RigDecommissioned, UpdatedAt: at}}
	check(Rigs, len(rs), func(i int) []string { return rs[i].CSVRow() }, func(b *Batch) any { return b.Rigs }, rs)
	ms := []Meter{{MeterID: "M1", FeederID: "F1", Role: RoleSite, Class: ClassMining, SiteID: "X", Oblast: "East Kazakhstan", UpdatedAt: at}}
	check(Meters, len(ms), func(i int) []string { return ms[i].CSVRow() }, func(b *Batch) any { return b.Meters }, ms)
	rd := []Reading{{MeterID: "M1", TS: at, KWh: 0.734, IntervalS: 1800}}
	check(Readings, len(rd), func(i int) []string { return rd[i].CSVRow() }, func(b *Batch) any { return b.Readings }, rd)
	ps := []Purchase{{TxID: "T1", OperatorID: "O1", SiteID: "X", MWh: 0.75, PriceKZTPerMWh: &price, TS: at}, {TxID: "T2", OperatorID: "O1", MWh: 1, TS: at}}
	check(Purchases, len(ps), func(i int) []string { return ps[i].CSVRow() }, func(b *Batch) any { return b.Purchases }, ps)
}
