package ioc

import (
	"encoding/json"
	"testing"
)

func benchDetectionJSON(b *testing.B) []byte {
	ev, err := DecodeEvent(readEvents(b)[0])
	if err != nil {
		b.Fatal(err)
	}
	set, _ := Compile([]Indicator{{ID: "i-1", Kind: KindSHA256, Value: sha256Hex, Source: "feed-a", Severity: SeverityHigh, Tags: []string{"ransomware"}}})
	d, err := NewDetection(ev, EngineAtomic, "", 0, set.Match(&ev, t0), t0)
	if err != nil {
		b.Fatal(err)
	}
	data, err := json.Marshal(d)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkDecodeDetection measures the strict decoding every consumer of
// detections pays per message.
func BenchmarkDecodeDetection(b *testing.B) {
	data := benchDetectionJSON(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeDetection(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeDetectionLax is encoding/json without the strict checks,
// the floor for BenchmarkDecodeDetection.
func BenchmarkDecodeDetectionLax(b *testing.B) {
	data := benchDetectionJSON(b)
	type plain Detection
	type lax struct {
		plain
		Event json.RawMessage `json:"event"`
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var d lax
		if err := json.Unmarshal(data, &d); err != nil {
			b.Fatal(err)
		}
		var e struct {
			Schema string
		}
		_ = json.Unmarshal(d.Event, &e)
	}
}
