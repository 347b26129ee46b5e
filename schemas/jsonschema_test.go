package schemas

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestJSONSchemasAgree checks that each input schema names exactly the
// contract's fields, and requires exactly what the decoder requires: a
// value with only the required fields is accepted, and dropping any one of
// them is rejected naming that field.
func TestJSONSchemasAgree(t *testing.T) {
	samples := map[Stream]map[string]any{
		Licenses:  {"license_id": "L1", "operator_id": "O1", "status": "active", "valid_from": "2025-01-01T00:00:00Z", "valid_to": "2026-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"},
		Rigs:      {"rig_id": "R1", "serial": "S1", "rated_power_w": 3250, "operator_id": "O1", "license_id": "L1", "site_id": "X", "status": "active", "updated_at": "2025-01-01T00:00:00Z"},
		Meters:    {"meter_id": "M1", "feeder_id": "F1", "role": "customer", "class": "residential", "updated_at": "2025-01-01T00:00:00Z"},
		Readings:  {"meter_id": "M1", "ts": "2025-10-01T00:15:00Z", "kwh": 1.5},
		Purchases: {"tx_id": "T1", "operator_id": "O1", "mwh": 1, "ts": "2025-01-01T00:00:00Z"},
	}
	for s, sample := range samples {
		name := strings.TrimSuffix(string(s), "s")
		raw, err := JSONSchema(name)
		if err != nil {
			t.Fatal(err)
		}
		var sch struct {
			Properties map[string]any `json:"properties"`
			Required   []string       `json:"required"`
		}
		if err := json.Unmarshal(raw, &sch); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var props []string
		for p := range sch.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		fields := append([]string(nil), Fields(s)...)
		sort.Strings(fields)
		if !reflect.DeepEqual(props, fields) {
			t.Errorf("%s schema properties %v, contract fields %v", name, props, fields)
		}
		req := append([]string(nil), sch.Required...)
		sort.Strings(req)
		var have []string
		for k := range sample {
			have = append(have, k)
		}
		sort.Strings(have)
		if !reflect.DeepEqual(req, have) {
			t.Errorf("%s schema requires %v, decoder test sample has %v", name, req, have)
		}
		b, _ := json.Marshal(sample)
		if err := DecodeJSON(s, b, &Batch{}); err != nil {
			t.Errorf("%s: minimal value rejected: %v", name, err)
		}
		for _, f := range sch.Required {
			cp := map[string]any{}
			for k, v := range sample {
				if k != f {
					cp[k] = v
				}
			}
			b, _ := json.Marshal(cp)
			if err := DecodeJSON(s, b, &Batch{}); FieldOf(err) != f {
				t.Errorf("%s without %s: %v, want a reject naming %s", name, f, err, f)
			}
		}
	}
	for _, n := range []string{"alert", "reject"} {
		if _, err := JSONSchema(n); err != nil {
			t.Error(err)
		}
	}
}

// TestJSONSchemaIntegers checks with a JSON Schema validator that the
// reading schema and the decoder agree on integer fields written as floats:
// the schema's "integer" accepts any number with an integral value, and
// the decoder must accept exactly those.
func TestJSONSchemaIntegers(t *testing.T) {
	raw, err := JSONSchema("reading")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("reading.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("reading.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, iv := range []string{
		"900", "900.0", "9e2", "9.0e2", "9.0E+2", "90000e-2", "1800.000", "86400", "8.64e4", "1",
		"900.5", "900.0000000000000001", "0.5e3", "1e-2", "0", "0.0", "-900", "-900.0",
		"86401", "86400.5", "1e5", "2147483648", "9e9", "1e300", `"900"`, "true", "[900]", "{}",
	} {
		in := `{"meter_id":"M1","ts":"2025-10-01T00:15:00Z","kwh":1.5,"interval_s":` + iv + `}`
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		schemaOK := sch.Validate(v) == nil
		decErr := DecodeJSON(Readings, []byte(in), &Batch{})
		if schemaOK != (decErr == nil) {
			t.Errorf("interval_s %s: schema accepts %v, decoder says %v", iv, schemaOK, decErr)
		}
		if decErr != nil && FieldOf(decErr) != "interval_s" {
			t.Errorf("interval_s %s: reject %v does not name interval_s", iv, decErr)
		}
	}
}
