package bus_test

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/cordonsec/cordon/ioc"
)

// referenceDecode decodes a detection the slow, obviously strict way:
// encoding/json with unknown fields refused and nothing after the object,
// then Validate. ioc.DecodeDetection, which takes a faster path for the
// common form, must agree with it on every input.
//
// encoding/json matches keys without case ("ID", even "ſchema") and takes
// the last of repeated keys; the wire contract has exact, unique keys, so
// the reference first refuses any other key (checkKeys).
func referenceDecode(data []byte) (ioc.Detection, error) {
	if err := checkKeys(json.NewDecoder(bytes.NewReader(data))); err != nil {
		return ioc.Detection{}, err
	}
	type plain ioc.Detection // without Detection's UnmarshalJSON
	var p plain
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return ioc.Detection{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ioc.Detection{}, errTrailing
	}
	d := ioc.Detection(p)
	if err := d.Validate(); err != nil {
		return ioc.Detection{}, err
	}
	return d, nil
}

var errTrailing = jsonErr("trailing data")

// checkKeys walks one JSON value and refuses an object key that is
// repeated in its object or is not written as the schema's field names
// are (lower-case ASCII letters, digits and '_'), so that a key can only
// match a field exactly.
func checkKeys(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := kt.(string)
			if seen[k] {
				return jsonErr("repeated key " + k)
			}
			seen[k] = true
			for _, c := range k {
				if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
					return jsonErr("key not in the schema's spelling: " + k)
				}
			}
			if err := checkKeys(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('['):
		for dec.More() {
			if err := checkKeys(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

type jsonErr string

func (e jsonErr) Error() string { return string(e) }

// checkSameDecoding fails t when ioc.DecodeDetection and referenceDecode
// disagree on data: one accepting what the other refuses, or both
// accepting with different values.
func checkSameDecoding(t *testing.T, data []byte) {
	t.Helper()
	got, err := ioc.DecodeDetection(data)
	want, werr := referenceDecode(data)
	if (err == nil) != (werr == nil) {
		t.Fatalf("decoding %q: DecodeDetection error %v, reference error %v", data, err, werr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decoding %q:\n got %#v\nwant %#v", data, got, want)
	}
}

// detectionsOfEveryKind returns a valid detection per event kind, with
// every optional field filled in.
func detectionsOfEveryKind() []ioc.Detection {
	base := detection("h-1", 7)
	base.Host.Addresses = []string{"192.0.2.10", "2001:db8::1"}
	base.Indicators[0].Confidence = 90
	base.Indicators[0].Description = "größer — non-ASCII"
	base.Indicators[0].ValidFrom = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	base.Indicators[0].ValidUntil = time.Date(2027, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	base.Rule = "rule-1"
	blocks := []func(*ioc.Event){
		func(ev *ioc.Event) {
			ev.Kind = ioc.EventFile
			ev.File = &ioc.FileEvent{Path: "/tmp/a", Name: "a", Size: 1 << 40, MD5: "d41d8cd98f00b204e9800998ecf8427e",
				SHA1: "da39a3ee5e6b4b0d3255bfef95601890afd80709", SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
		},
		func(ev *ioc.Event) {
			ev.Kind = ioc.EventProcess
			ev.Process = &ioc.ProcessEvent{PID: 42, Name: "sh", Path: "/bin/sh", CommandLine: "sh -c 'x'", ParentPID: 1, ParentName: "init"}
		},
		func(ev *ioc.Event) {
			ev.Kind = ioc.EventNetwork
			ev.Network = &ioc.NetworkEvent{Protocol: "tcp", Direction: "out", LocalAddress: "192.0.2.10", LocalPort: 40000, RemoteAddress: "198.18.0.1", RemotePort: 443}
		},
		func(ev *ioc.Event) {
			ev.Kind = ioc.EventDNS
			ev.DNS = &ioc.DNSEvent{Query: "example.com", Answers: []string{"198.18.0.2"}}
		},
		func(ev *ioc.Event) {
			ev.Kind = ioc.EventHTTP
			ev.HTTP = &ioc.HTTPEvent{URL: "https://example.com/x", Method: "GET"}
		},
		func(ev *ioc.Event) {
			ev.Kind = ioc.EventRegistry
			ev.Registry = &ioc.RegistryEvent{Key: `HKLM\Software\X`, ValueName: "v", Data: "d"}
		},
		func(ev *ioc.Event) {
			ev.Kind = ioc.EventMutex
			ev.Mutex = &ioc.MutexEvent{Name: "m"}
		},
	}
	var ds []ioc.Detection
	for _, set := range blocks {
		d := base
		d.Indicators = append([]ioc.Indicator(nil), base.Indicators...)
		d.Event.File = nil
		set(&d.Event)
		ds = append(ds, d)
	}
	return ds
}

// TestDecodeDetectionFastPathAgrees checks the decoder against the
// encoding/json reference on encoded detections of every event kind and
// on variations of them the fast path leaves to encoding/json.
func TestDecodeDetectionFastPathAgrees(t *testing.T) {
	for _, d := range detectionsOfEveryKind() {
		data, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(string(d.Event.Kind), func(t *testing.T) {
			got, err := ioc.DecodeDetection(data)
			if err != nil {
				t.Fatalf("decode %s: %v", data, err)
			}
			want, err := referenceDecode(data)
			if err != nil {
				t.Fatalf("reference decode %s: %v", data, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %#v\nwant %#v", got, want)
			}
			indented, _ := json.MarshalIndent(d, "", "\t")
			for _, v := range [][]byte{
				indented,
				bytes.Replace(data, []byte(`"id"`), []byte(`"ID"`), 1),                            // case-folded key
				bytes.Replace(data, []byte(`"schema"`), []byte(`"\u017fchema"`), 1),               // folded by encoding/json (long s)
				bytes.Replace(data, []byte(`"rule":"rule-1"`), []byte(`"rule":"rule-\u0031"`), 1), // escape
				bytes.Replace(data, []byte(`"rule":"rule-1"`), []byte(`"rule":null`), 1),
				bytes.Replace(data, []byte(`"rule":"rule-1"`), []byte(`"rule":"a","rule":"b"`), 1), // repeated key
				bytes.Replace(data, []byte(`"rule":"rule-1"`), []byte(`"rules":"x"`), 1),           // unknown field
				bytes.Replace(data, []byte(`"score":80`), []byte(`"score":8e1`), 1),
				bytes.Replace(data, []byte(`"score":80`), []byte(`"score":080`), 1),
				bytes.Replace(data, []byte(`"score":80`), []byte(`"score":-0`), 1),
				bytes.Replace(data, []byte(`"score":80`), []byte(`"score":99999999999999999999`), 1),
				bytes.Replace(data, []byte(`"tags":["ransomware"]`), []byte(`"tags":[]`), 1),
				bytes.Replace(data, []byte(`"addresses":[`), []byte(`"addresses":[ "192.0.2.99" ,`), 1),
				bytes.Replace(data, []byte(`"severity":"high"`), []byte(`"severity":"nonsense"`), 1),
				bytes.Replace(data, []byte(`"time":"`), []byte(`"time":"x`), 1),
				bytes.Replace(data, []byte(`größer`), []byte("gr\xffer"), 1), // invalid UTF-8
				append(bytes.Clone(data), " \n"...),
				append(bytes.Clone(data), "{}"...),
				data[:len(data)-1],
			} {
				checkSameDecoding(t, v)
			}
		})
	}
}

// FuzzDecodeDetectionFastPath checks on any bytes that ioc.DecodeDetection
// accepts exactly what the encoding/json reference accepts, with the same
// value.
func FuzzDecodeDetectionFastPath(f *testing.F) {
	for _, d := range detectionsOfEveryKind() {
		data, _ := json.Marshal(d)
		f.Add(data)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"schema":"cordon.detection/v1","indicators":[{"kind":"sha256","tags":[]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkSameDecoding(t, data) })
}

// checkSameEncoding fails t when Detection.AppendJSON and json.Marshal
// disagree on d, in bytes or in failing.
func checkSameEncoding(t *testing.T, d ioc.Detection) {
	t.Helper()
	want, werr := json.Marshal(d)
	got, err := d.AppendJSON([]byte("prefix"))
	if (err == nil) != (werr == nil) {
		t.Fatalf("encoding %#v: AppendJSON error %v, json.Marshal error %v", d, err, werr)
	}
	if err == nil && string(got) != "prefix"+string(want) {
		t.Fatalf("encoding %#v:\n got %s\nwant prefix%s", d, got, want)
	}
}

// TestDetectionAppendJSONAgrees checks the encoder against json.Marshal
// on detections of every kind and on values it leaves to json.Marshal.
func TestDetectionAppendJSONAgrees(t *testing.T) {
	for _, d := range detectionsOfEveryKind() {
		t.Run(string(d.Event.Kind), func(t *testing.T) {
			checkSameEncoding(t, d)
			variants := []func(*ioc.Detection){
				func(d *ioc.Detection) { d.Indicators = nil },
				func(d *ioc.Detection) { d.Indicators = []ioc.Indicator{} },
				func(d *ioc.Detection) { d.Indicators[0].Tags = []string{} },
				func(d *ioc.Detection) { d.Indicators[0].Severity = 0; d.Indicators[0].Score = -3 },
				func(d *ioc.Detection) { d.Indicators[0].Kind = 0 },
				func(d *ioc.Detection) { d.Severity = 200 },
				func(d *ioc.Detection) { d.Rule = `<a href="x">&\` },
				func(d *ioc.Detection) { d.Rule = "tab\there" },
				func(d *ioc.Detection) { d.Host.Name = "gr\xffer" },
				func(d *ioc.Detection) { d.Host = ioc.Host{} },
				func(d *ioc.Detection) { d.Event.Host.Addresses = []string{} },
				func(d *ioc.Detection) { d.Time = time.Time{} },
				func(d *ioc.Detection) { d.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
				func(d *ioc.Detection) { d.Event = ioc.Event{} },
			}
			for _, v := range variants {
				c := d
				c.Indicators = append([]ioc.Indicator(nil), d.Indicators...)
				c.Host.Addresses = append([]string(nil), d.Host.Addresses...)
				v(&c)
				checkSameEncoding(t, c)
			}
		})
	}
}

// FuzzDetectionAppendJSON checks AppendJSON against json.Marshal on
// whatever detections encoding/json makes of the fuzzer's bytes
// (unvalidated, so with odd strings, numbers and nils).
func FuzzDetectionAppendJSON(f *testing.F) {
	for _, d := range detectionsOfEveryKind() {
		data, _ := json.Marshal(d)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		type plain ioc.Detection
		type plainEvent ioc.Event
		var p struct {
			*plain
			Event *plainEvent `json:"event"`
		}
		p.plain = &plain{}
		if json.Unmarshal(data, &p) != nil {
			return
		}
		d := ioc.Detection(*p.plain)
		if p.Event != nil {
			d.Event = ioc.Event(*p.Event)
		}
		checkSameEncoding(t, d)
	})
}
