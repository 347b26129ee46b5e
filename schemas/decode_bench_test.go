package schemas

import "testing"

// BenchmarkDecodeJSONReading decodes a reading whose interval_s is written
// as an integer and, as Python's json module writes it, as a float.
func BenchmarkDecodeJSONReading(b *testing.B) {
	for _, iv := range []string{"900", "900.0"} {
		b.Run("interval_s="+iv, func(b *testing.B) {
			v := []byte(`{"meter_id":"M-UK-000123","ts":"2025-10-01T00:15:00Z","kwh":0.734,"interval_s":` + iv + `}`)
			var batch Batch
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			for i := 0; i < b.N; i++ {
				if err := DecodeJSON(Readings, v, &batch); err != nil {
					b.Fatal(err)
				}
				if len(batch.Readings) == 4096 {
					batch.Reset()
				}
			}
		})
	}
}

func BenchmarkDecodeCSVReading(b *testing.B) {
	d, err := NewCSVDecoder(Readings, []string{"meter_id", "ts", "kwh", "interval_s"})
	if err != nil {
		b.Fatal(err)
	}
	for _, iv := range []string{"900", "900.0"} {
		b.Run("interval_s="+iv, func(b *testing.B) {
			row := []string{"M-UK-000123", "2025-10-01T00:15:00Z", "0.734", iv}
			var batch Batch
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := d.Decode(row, &batch); err != nil {
					b.Fatal(err)
				}
				if len(batch.Readings) == 4096 {
					batch.Reset()
				}
			}
		})
	}
}
