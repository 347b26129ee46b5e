package schemas

import (
	"reflect"
	"testing"
)

// scanCases are readings the fast path reads itself (fast) or leaves to
// encoding/json; both must give the same result.
var scanCases = []struct {
	in   string
	fast bool
}{
	{`{"meter_id":"M-UK-000123","ts":"2025-10-01T00:15:00Z","kwh":0.734,"interval_s":900}`, true},
	{` { "ts" : "2025-10-01T05:15:00+05:00" ,"kwh":1e-3, "meter_id":"M1" } ` + "\n", true},
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":-0,"interval_s":1800}`, true},
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":2,"kwh":3}`, true},        // last wins
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":-1}`, true},               // range reject
	{`{"meter_id":"M1","ts":"0001-01-01T00:00:00Z","kwh":1}`, true},                // year 1
	{`{"meter_id":"M1","ts":"yesterday","kwh":1}`, true},                           // format reject
	{`{"meter_id":"","ts":"2025-10-01T00:15:00Z","kwh":1}`, true},                  // empty id
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z"}`, true},                        // kwh missing
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":0}`, true}, // zero interval
	{`{}`, true}, // all missing
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":900.0}`, true},        // integral float
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":9e2}`, true},          // exponent
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":9.0E+2}`, true},       // both
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":180000e-2}`, true},    // negative exponent
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":-0.0}`, true},         // zero: range reject
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":1e5}`, true},          // above 86400: range reject
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":900.5}`, false},       // not an integer
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":99999999999}`, false}, // int32 overflow
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":9e9}`, false},         // int32 overflow
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"interval_s":"900"}`, false},       // wrong type
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1e999}`, false},                      // out of float range
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":01}`, false},                         // leading zero
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":NaN}`, false},
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":"1.5"}`, false}, // wrong type
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":null}`, false},
	{`{"Meter_ID":"M1","ts":"2025-10-01T00:15:00Z","kwh":1}`, false},              // encoding/json matches keys without case
	{`{"meter_id":"M\u0031","ts":"2025-10-01T00:15:00Z","kwh":1}`, false},         // escape
	{`{"meter_id":"Мера","ts":"2025-10-01T00:15:00Z","kwh":1}`, false},            // non-ASCII
	{"{\"meter_id\":\"M\xff\",\"ts\":\"2025-10-01T00:15:00Z\",\"kwh\":1}", false}, // invalid UTF-8
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,"site":{"a":[1]}}`, false},
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1,}`, false},
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1}x`, false},
	{`{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1`, false},
	{`[1]`, false},
	{``, false},
}

func TestScanReadingAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range scanCases {
		_, fast, _ := scanReading([]byte(c.in))
		if fast != c.fast {
			t.Errorf("%s: fast path %v, want %v", c.in, fast, c.fast)
		}
		checkScanAgrees(t, []byte(c.in))
	}
}

// checkScanAgrees fails when the fast path reads data and its answer
// differs from encoding/json's.
func checkScanAgrees(t *testing.T, data []byte) {
	t.Helper()
	r1, fast, err1 := scanReading(data)
	if !fast {
		return
	}
	r2, err2 := decodeReading(data)
	switch {
	case (err1 == nil) != (err2 == nil):
		t.Fatalf("%q: fast path error %v, encoding/json error %v", data, err1, err2)
	case err1 != nil && err1.Error() != err2.Error():
		t.Fatalf("%q: fast path error %q, encoding/json error %q", data, err1, err2)
	case !reflect.DeepEqual(r1, r2):
		t.Fatalf("%q: fast path read %+v, encoding/json %+v", data, r1, r2)
	}
}

// FuzzScanReading checks that the fast reading path and encoding/json agree
// on every input the fast path reads.
func FuzzScanReading(f *testing.F) {
	for _, c := range scanCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(checkScanAgrees)
}
