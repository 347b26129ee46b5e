package schemas

import "testing"

func BenchmarkDecodeJSONReading(b *testing.B) {
	v := []byte(`{"meter_id":"M-UK-000123","ts":"2025-10-01T00:15:00Z","kwh":0.734,"interval_s":900}`)
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
}

func BenchmarkDecodeCSVReading(b *testing.B) {
	d, err := NewCSVDecoder(Readings, []string{"meter_id", "ts", "kwh", "interval_s"})
	if err != nil {
		b.Fatal(err)
	}
	row := []string{"M-UK-000123", "2025-10-01T00:15:00Z", "0.734", "900"}
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
}
