package ingest

import (
	"testing"

	"github.com/rigwatch/rigwatch/schemas"
)

// TestStampOrdersVersions checks that every record of a batch gets a
// version above all earlier ones, in decode order, across batches: a later
// delivery of a key must replace an earlier one.
func TestStampOrdersVersions(t *testing.T) {
	var last uint64
	for range 3 {
		b := &schemas.Batch{Licenses: make([]schemas.License, 2), Meters: make([]schemas.Meter, 1),
			Readings: make([]schemas.Reading, 1000), Purchases: make([]schemas.Purchase, 3)}
		stamp(b)
		var got []uint64
		for _, r := range b.Licenses {
			got = append(got, r.Version)
		}
		for _, r := range b.Meters {
			got = append(got, r.Version)
		}
		for _, r := range b.Readings {
			got = append(got, r.Version)
		}
		for _, r := range b.Purchases {
			got = append(got, r.Version)
		}
		for i, v := range got {
			if v <= last {
				t.Fatalf("record %d got version %d, not above %d", i, v, last)
			}
			last = v
		}
	}
	if v := versions.Next(); v <= last {
		t.Fatalf("Next gave %d after %d", v, last)
	}
}
