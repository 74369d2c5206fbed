package bus_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cordonsec/cordon/bus"
)

func TestParseSchema(t *testing.T) {
	tests := []struct {
		in   string
		want bus.Schema
		ok   bool
	}{
		{"cordon.detection/v1", bus.Schema{Name: "cordon.detection", Major: 1}, true},
		{"cordon.detection/v1.3", bus.Schema{Name: "cordon.detection", Major: 1, Minor: 3}, true},
		{"cordon.detection/v12", bus.Schema{Name: "cordon.detection", Major: 12}, true},
		{"cordon.detection/v01", bus.Schema{}, false},
		{"cordon.detection/v", bus.Schema{}, false},
		{"cordon.detection/v1.", bus.Schema{}, false},
		{"cordon.detection/v1.x", bus.Schema{}, false},
		{"cordon.detection/1", bus.Schema{}, false},
		{"/v1", bus.Schema{}, false},
		{"a b/v1", bus.Schema{}, false},
		{"cordon.detection/v-1", bus.Schema{}, false},
		{"cordon.detection/v9999999", bus.Schema{}, false},
		{"", bus.Schema{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := bus.ParseSchema(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParseSchema(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
			if err != nil && !errors.Is(err, bus.ErrUnsupportedSchema) {
				t.Errorf("error %v does not wrap ErrUnsupportedSchema", err)
			}
			if err == nil && got.String() != tc.in {
				t.Errorf("String() = %q", got.String())
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	tests := []struct {
		name    string
		f       func() (string, error)
		want    string
		wantErr bool
	}{
		{"detection", func() (string, error) { return bus.DetectionSubject("h-42") }, "cordon.detections.h-42", false},
		{"command", func() (string, error) { return bus.CommandSubject("web_01") }, "cordon.commands.web_01", false},
		{"event", func() (string, error) { return bus.EventSubject("h-1", "isolation.enabled") }, "cordon.events.h-1.isolation.enabled", false},
		{"dotted host", func() (string, error) { return bus.DetectionSubject("web-01.example.com") }, "", true},
		{"wildcard host", func() (string, error) { return bus.CommandSubject("*") }, "", true},
		{"tail wildcard", func() (string, error) { return bus.CommandSubject("h>") }, "", true},
		{"space", func() (string, error) { return bus.DetectionSubject("h 1") }, "", true},
		{"empty", func() (string, error) { return bus.DetectionSubject("") }, "", true},
		{"slash", func() (string, error) { return bus.DetectionSubject("a/b") }, "", true},
		{"control", func() (string, error) { return bus.DetectionSubject("a\x01") }, "", true},
		{"bad utf8", func() (string, error) { return bus.DetectionSubject("a\xff") }, "", true},
		{"long", func() (string, error) { return bus.DetectionSubject(strings.Repeat("a", 129)) }, "", true},
		{"empty kind", func() (string, error) { return bus.EventSubject("h", "") }, "", true},
		{"empty kind part", func() (string, error) { return bus.EventSubject("h", "a.") }, "", true},
		{"wildcard kind", func() (string, error) { return bus.EventSubject("h", "a.>") }, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.f()
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %q, %v; want %q, error=%v", got, err, tc.want, tc.wantErr)
			}
			if err != nil && !errors.Is(err, bus.ErrInvalidSubject) {
				t.Errorf("error %v does not wrap ErrInvalidSubject", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  bus.Config
		ok   bool
	}{
		{"embedded", bus.Config{DataDir: "/tmp/x"}, true},
		{"embedded listening on loopback", bus.Config{DataDir: "/tmp/x", Listen: "127.0.0.1:0"}, true},
		{"embedded listening on ::1", bus.Config{DataDir: "/tmp/x", Listen: "[::1]:4222"}, true},
		{"embedded without data dir", bus.Config{}, false},
		{"listen on all without consent", bus.Config{DataDir: "/tmp/x", Listen: "0.0.0.0:4222"}, false},
		{"listen on all with consent", bus.Config{DataDir: "/tmp/x", Listen: "0.0.0.0:4222", ListenAnyAddress: true}, true},
		{"listen without port", bus.Config{DataDir: "/tmp/x", Listen: "127.0.0.1"}, false},
		{"listen bad port", bus.Config{DataDir: "/tmp/x", Listen: "127.0.0.1:99999"}, false},
		{"urls", bus.Config{URLs: []string{"nats://127.0.0.1:4222"}}, true},
		{"empty url", bus.Config{URLs: []string{""}}, false},
		{"creds and seed", bus.Config{URLs: []string{"nats://x"}, CredsFile: "a", NKeySeedFile: "b"}, false},
		{"cert without key", bus.Config{URLs: []string{"tls://x"}, TLS: &bus.TLSConfig{CertFile: "c"}}, false},
		{"ca only", bus.Config{URLs: []string{"tls://x"}, TLS: &bus.TLSConfig{CAFile: "ca"}}, true},
		{"reconnect min above max", bus.Config{DataDir: "x", ReconnectMin: time.Second, ReconnectMax: time.Millisecond}, false},
		{"replicas 7", bus.Config{DataDir: "x", Replicas: 7}, false},
		{"negative size", bus.Config{DataDir: "x", MaxMessageBytes: -1}, false},
		{"negative max age", bus.Config{DataDir: "x", Events: bus.StreamLimits{MaxAge: -time.Hour}}, false},
		{"history 65", bus.Config{DataDir: "x", IsolationHistory: 65}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, bus.ErrInvalidConfig)) {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestConsumerConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  bus.ConsumerConfig
		ok   bool
	}{
		{"zero", bus.ConsumerConfig{}, true},
		{"durable with dot", bus.ConsumerConfig{Durable: "a.b"}, false},
		{"negative ack wait", bus.ConsumerConfig{AckWait: -1}, false},
		{"negative backoff", bus.ConsumerConfig{Backoff: []time.Duration{time.Second, -1}}, false},
		{"negative batch", bus.ConsumerConfig{Batch: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestDecodeDetectionErrorsNameTheField(t *testing.T) {
	good, _ := json.Marshal(detection("h-1", 1))
	tests := []struct {
		name, subject, data string
		want                error
		field               string
	}{
		{"ok", "cordon.detections.h-1", string(good), nil, ""},
		{"ok without subject", "", string(good), nil, ""},
		{"wrong type", "", strings.Replace(string(good), `"score":80`, `"score":"high"`, 1), bus.ErrMalformed, "indicators.score"},
		{"unknown field", "", strings.Replace(string(good), `"rule":""`, `"rule":"","colour":"red"`, 1), bus.ErrMalformed, "colour"},
		{"bad address", "", strings.Replace(string(good), `"192.0.2.10"`, `"300.1.1.1"`, 1), bus.ErrMalformed, "host.addresses[0]"},
		{"no id", "", strings.Replace(string(good), `"id":"det-h-1-000001"`, `"id":""`, 1), bus.ErrMalformed, "id"},
		{"v2", "", strings.Replace(string(good), `/v1"`, `/v2"`, 1), bus.ErrUnsupportedSchema, "schema"},
		{"subject of another host", "cordon.detections.h-2", string(good), bus.ErrMalformed, "host.id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bus.DecodeDetection(tc.subject, []byte(tc.data))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("DecodeDetection: %v, want %v", err, tc.want)
			}
			var de *bus.DecodeError
			if err != nil && (!errors.As(err, &de) || de.Field != tc.field) {
				t.Errorf("error %v: want a DecodeError on field %q", err, tc.field)
			}
		})
	}
}

func FuzzDecodeDetection(f *testing.F) {
	good, _ := json.Marshal(detection("h-1", 1))
	f.Add("cordon.detections.h-1", good)
	f.Add("", []byte(`{"schema":"cordon.detection/v1.7","id":"x"}`))
	f.Add("cordon.detections.x", []byte(`{"schema":"cordon.detection/v2","id":"x"}`))
	f.Add("", []byte("\x00"))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		d, err := bus.DecodeDetection(subject, data)
		if err != nil {
			var de *bus.DecodeError
			if !errors.As(err, &de) || !(errors.Is(err, bus.ErrMalformed) || errors.Is(err, bus.ErrUnsupportedSchema)) {
				t.Fatalf("error %v is not a classified DecodeError", err)
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted an invalid detection: %v", err)
		}
		again, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bus.DecodeDetection(subject, again); err != nil {
			t.Fatalf("re-encoded detection no longer decodes: %v", err)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add("cordon.events.h-1.isolation.enabled", []byte(`{"schema":"cordon.audit/v1","id":"e1","time":"2026-11-25T10:00:00Z","host":"h-1","kind":"isolation.enabled","data":{"a":1}}`))
	f.Add("", []byte(`{"schema":"cordon.audit/v1.2","id":"e1","time":"2026-11-25T10:00:00Z","host":"h.1","kind":"x"}`))
	f.Add("", []byte(`{"schema":"cordon.audit/v3"}`))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		e, err := bus.DecodeEvent(subject, data)
		if err != nil {
			var de *bus.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a DecodeError", err)
			}
			return
		}
		subj, err := e.Subject()
		if err != nil || (subject != "" && subj != subject) || e.ID == "" || e.Time.IsZero() {
			t.Fatalf("accepted event %+v on %q (own subject %q, %v)", e, subject, subj, err)
		}
	})
}

func FuzzDecodeDeadLetter(f *testing.F) {
	f.Add([]byte(`{"schema":"cordon.deadletter/v1","id":"S-1","time":"2026-11-25T10:00:00Z","stream":"S","consumer":"c","subject":"s","stream_seq":1,"deliveries":1,"reason":"malformed","error":"x","size":1,"data":"AA=="}`))
	f.Add([]byte(`{"schema":"cordon.deadletter/v1","id":"S-1","data":"!!"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := bus.DecodeDeadLetter(data)
		if err == nil && (rec.ID == "" || rec.Schema == "") {
			t.Fatalf("accepted %+v", rec)
		}
	})
}
