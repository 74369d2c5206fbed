package ioc

import (
	"encoding"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// The functions below decode the common form of a detection (as
// json.Marshal writes it) without reflection, several times faster than
// encoding/json. They accept a strict subset of what the encoding/json
// path accepts and decode it to the same value; on anything else (an
// escape in a string, null, a key that is not exactly a field name, a
// repeated key, a value of another type, any malformed JSON) they report
// false and the caller decodes with encoding/json, which names the error.

// fastDecodeDetection decodes data into a Detection without validating
// it; ok is false when data is not in the subset described above.
func fastDecodeDetection(data []byte) (d Detection, ok bool) {
	r := jsonReader{b: data}
	ok = r.object(func(key []byte) bool {
		switch string(key) {
		case "schema":
			return r.str(&d.Schema)
		case "id":
			return r.str(&d.ID)
		case "fingerprint":
			return r.str(&d.Fingerprint)
		case "time":
			return r.time(&d.Time)
		case "host":
			return r.host(&d.Host)
		case "engine":
			return r.str((*string)(&d.Engine))
		case "rule":
			return r.str(&d.Rule)
		case "indicators":
			return r.array(func() bool {
				d.Indicators = append(d.Indicators, Indicator{})
				return r.indicator(&d.Indicators[len(d.Indicators)-1])
			}, func() { d.Indicators = []Indicator{} })
		case "severity":
			return r.text(&d.Severity)
		case "event":
			return r.event(&d.Event)
		}
		return false
	})
	return d, ok && r.end()
}

// jsonReader reads the subset of JSON that fastDecodeDetection accepts.
type jsonReader struct {
	b []byte
	i int
}

func (r *jsonReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// end reports whether only white space is left.
func (r *jsonReader) end() bool {
	r.ws()
	return r.i == len(r.b)
}

func (r *jsonReader) next(c byte) bool {
	r.ws()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// rawString returns the bytes of a string without escapes, including
// the quotes.
func (r *jsonReader) rawString() ([]byte, bool) {
	raw, escaped, ok := r.rawEscapedString()
	return raw, ok && !escaped
}

// rawEscapedString returns the bytes of a string, including the quotes,
// and whether it has escapes. A string with a control character or
// invalid UTF-8 is not read (ok false).
func (r *jsonReader) rawEscapedString() (raw []byte, escaped, ok bool) {
	r.ws()
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		return nil, false, false
	}
	start := r.i
	high := false
	for j := r.i + 1; j < len(r.b); j++ {
		switch c := r.b[j]; {
		case c == '"':
			r.i = j + 1
			s := r.b[start:r.i]
			if high && !utf8.Valid(s) {
				return nil, false, false
			}
			return s, escaped, true
		case c == '\\':
			escaped = true
			j++ // the escaped byte cannot end the string
		case c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			high = true
		}
	}
	return nil, false, false
}

// str reads a string value. One with escapes (every Windows path has
// some) is unquoted by encoding/json, so that it decodes exactly as the
// reflective path decodes it.
func (r *jsonReader) str(s *string) bool {
	raw, escaped, ok := r.rawEscapedString()
	if !ok {
		return false
	}
	if escaped {
		return json.Unmarshal(raw, s) == nil
	}
	*s = string(raw[1 : len(raw)-1])
	return true
}

func (r *jsonReader) text(t encoding.TextUnmarshaler) bool {
	raw, ok := r.rawString()
	return ok && t.UnmarshalText(raw[1:len(raw)-1]) == nil
}

func (r *jsonReader) time(t *time.Time) bool {
	raw, ok := r.rawString()
	return ok && t.UnmarshalJSON(raw) == nil
}

// integer reads a JSON integer that fits in bits (no fraction, no
// exponent, no leading zero).
func (r *jsonReader) integer(bits int) (int64, bool) {
	r.ws()
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	digits := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	n := r.i - digits
	if n == 0 || n > 19 || (n > 1 && r.b[digits] == '0') {
		return 0, false
	}
	if r.i < len(r.b) {
		switch r.b[r.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(r.b[start:r.i]), 10, bits)
	return v, err == nil
}

func (r *jsonReader) int(p *int) bool {
	v, ok := r.integer(strconv.IntSize)
	*p = int(v)
	return ok
}

func (r *jsonReader) int64(p *int64) bool {
	v, ok := r.integer(64)
	*p = v
	return ok
}

// object reads an object, calling field for each key with the reader at
// its value. A repeated key fails.
func (r *jsonReader) object(field func(key []byte) bool) bool {
	if !r.next('{') {
		return false
	}
	if r.next('}') {
		return true
	}
	var seen [16][]byte
	n := 0
	for {
		raw, ok := r.rawString()
		if !ok || !r.next(':') {
			return false
		}
		key := raw[1 : len(raw)-1]
		for _, k := range seen[:n] {
			if string(k) == string(key) {
				return false
			}
		}
		if n == len(seen) {
			return false
		}
		seen[n] = key
		n++
		if !field(key) {
			return false
		}
		if r.next('}') {
			return true
		}
		if !r.next(',') {
			return false
		}
	}
}

// array reads an array, calling elem for each element; empty is called
// for "[]", where encoding/json makes an empty, non-nil slice.
func (r *jsonReader) array(elem func() bool, empty func()) bool {
	if !r.next('[') {
		return false
	}
	if r.next(']') {
		empty()
		return true
	}
	for {
		if !elem() {
			return false
		}
		if r.next(']') {
			return true
		}
		if !r.next(',') {
			return false
		}
	}
}

func (r *jsonReader) strings(p *[]string) bool {
	*p = nil
	return r.array(func() bool {
		var s string
		ok := r.str(&s)
		*p = append(*p, s)
		return ok
	}, func() { *p = []string{} })
}

func (r *jsonReader) host(h *Host) bool {
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return r.str(&h.ID)
		case "name":
			return r.str(&h.Name)
		case "os":
			return r.str(&h.OS)
		case "addresses":
			return r.strings(&h.Addresses)
		}
		return false
	})
}

func (r *jsonReader) indicator(ind *Indicator) bool {
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return r.str(&ind.ID)
		case "kind":
			return r.text(&ind.Kind)
		case "value":
			return r.str(&ind.Value)
		case "source":
			return r.str(&ind.Source)
		case "severity":
			return r.text(&ind.Severity)
		case "score":
			return r.int(&ind.Score)
		case "confidence":
			return r.int(&ind.Confidence)
		case "tags":
			return r.strings(&ind.Tags)
		case "description":
			return r.str(&ind.Description)
		case "valid_from":
			return r.time(&ind.ValidFrom)
		case "valid_until":
			return r.time(&ind.ValidUntil)
		}
		return false
	})
}

func (r *jsonReader) event(ev *Event) bool {
	return r.object(func(key []byte) bool {
		switch string(key) {
		case "schema":
			return r.str(&ev.Schema)
		case "id":
			return r.str(&ev.ID)
		case "time":
			return r.time(&ev.Time)
		case "host":
			return r.host(&ev.Host)
		case "kind":
			return r.str((*string)(&ev.Kind))
		case "file":
			ev.File = &FileEvent{}
			f := ev.File
			return r.object(func(key []byte) bool {
				switch string(key) {
				case "path":
					return r.str(&f.Path)
				case "name":
					return r.str(&f.Name)
				case "size":
					return r.int64(&f.Size)
				case "md5":
					return r.str(&f.MD5)
				case "sha1":
					return r.str(&f.SHA1)
				case "sha256":
					return r.str(&f.SHA256)
				case "sha512":
					return r.str(&f.SHA512)
				}
				return false
			})
		case "process":
			ev.Process = &ProcessEvent{}
			p := ev.Process
			return r.object(func(key []byte) bool {
				switch string(key) {
				case "pid":
					return r.int(&p.PID)
				case "name":
					return r.str(&p.Name)
				case "path":
					return r.str(&p.Path)
				case "command_line":
					return r.str(&p.CommandLine)
				case "parent_pid":
					return r.int(&p.ParentPID)
				case "parent_name":
					return r.str(&p.ParentName)
				case "sha256":
					return r.str(&p.SHA256)
				}
				return false
			})
		case "network":
			ev.Network = &NetworkEvent{}
			n := ev.Network
			return r.object(func(key []byte) bool {
				switch string(key) {
				case "protocol":
					return r.str(&n.Protocol)
				case "direction":
					return r.str(&n.Direction)
				case "local_address":
					return r.str(&n.LocalAddress)
				case "local_port":
					return r.int(&n.LocalPort)
				case "remote_address":
					return r.str(&n.RemoteAddress)
				case "remote_port":
					return r.int(&n.RemotePort)
				}
				return false
			})
		case "dns":
			ev.DNS = &DNSEvent{}
			q := ev.DNS
			return r.object(func(key []byte) bool {
				switch string(key) {
				case "query":
					return r.str(&q.Query)
				case "answers":
					return r.strings(&q.Answers)
				}
				return false
			})
		case "http":
			ev.HTTP = &HTTPEvent{}
			h := ev.HTTP
			return r.object(func(key []byte) bool {
				switch string(key) {
				case "url":
					return r.str(&h.URL)
				case "method":
					return r.str(&h.Method)
				}
				return false
			})
		case "registry":
			ev.Registry = &RegistryEvent{}
			g := ev.Registry
			return r.object(func(key []byte) bool {
				switch string(key) {
				case "key":
					return r.str(&g.Key)
				case "value_name":
					return r.str(&g.ValueName)
				case "data":
					return r.str(&g.Data)
				}
				return false
			})
		case "mutex":
			ev.Mutex = &MutexEvent{}
			m := ev.Mutex
			return r.object(func(key []byte) bool {
				if string(key) == "name" {
					return r.str(&m.Name)
				}
				return false
			})
		}
		return false
	})
}

// AppendJSON appends d encoded as json.Marshal encodes it (the same
// bytes), faster: a detection whose strings need no escaping is written
// without reflection; any other is passed to json.Marshal. It fails as
// json.Marshal does (an invalid Kind or Severity, a time out of range).
func (d *Detection) AppendJSON(b []byte) ([]byte, error) {
	if out, ok := appendDetection(b, d); ok {
		return out, nil
	}
	data, err := json.Marshal(d)
	if err != nil {
		return b, err
	}
	return append(b, data...), nil
}

// plainJSON reports whether json.Marshal writes s as it is, between
// quotes: ASCII without control characters, quotes, backslashes and the
// characters it escapes for HTML.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= utf8.RuneSelf, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// jsonWriter appends JSON; ok turns false at the first value it cannot
// write exactly as json.Marshal does.
type jsonWriter struct {
	b     []byte
	ok    bool
	first bool // no field written yet in the current object
}

func (w *jsonWriter) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jsonWriter) open() { w.b = append(w.b, '{'); w.first = true }

func (w *jsonWriter) close() { w.b = append(w.b, '}'); w.first = false }

func (w *jsonWriter) str(k, s string) {
	w.key(k)
	w.strVal(s)
}

func (w *jsonWriter) strVal(s string) {
	if !plainJSON(s) {
		w.ok = false
		return
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, s...)
	w.b = append(w.b, '"')
}

func (w *jsonWriter) strOmit(k, s string) {
	if s != "" {
		w.str(k, s)
	}
}

func (w *jsonWriter) intOmit(k string, v int64) {
	if v != 0 {
		w.key(k)
		w.b = strconv.AppendInt(w.b, v, 10)
	}
}

func (w *jsonWriter) time(k string, t time.Time) {
	w.key(k)
	data, err := t.MarshalJSON()
	if err != nil {
		w.ok = false
		return
	}
	w.b = append(w.b, data...)
}

func (w *jsonWriter) text(k string, t encoding.TextMarshaler) {
	w.key(k)
	data, err := t.MarshalText()
	if err != nil {
		w.ok = false
		return
	}
	w.strVal(string(data))
}

func (w *jsonWriter) strings(k string, ss []string) {
	w.key(k)
	if ss == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '[')
	for i, s := range ss {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.strVal(s)
	}
	w.b = append(w.b, ']')
}

func (w *jsonWriter) host(k string, h *Host) {
	w.key(k)
	w.open()
	w.str("id", h.ID)
	w.strOmit("name", h.Name)
	w.strOmit("os", h.OS)
	if len(h.Addresses) > 0 {
		w.strings("addresses", h.Addresses)
	}
	w.close()
}

func appendDetection(b []byte, d *Detection) ([]byte, bool) {
	w := jsonWriter{b: b, ok: true}
	w.open()
	w.str("schema", d.Schema)
	w.str("id", d.ID)
	w.str("fingerprint", d.Fingerprint)
	w.time("time", d.Time)
	w.host("host", &d.Host)
	w.str("engine", string(d.Engine))
	w.str("rule", d.Rule)
	w.key("indicators")
	if d.Indicators == nil {
		w.b = append(w.b, "null"...)
	} else {
		w.b = append(w.b, '[')
		for i := range d.Indicators {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			ind := &d.Indicators[i]
			w.open()
			w.str("id", ind.ID)
			w.text("kind", ind.Kind)
			w.str("value", ind.Value)
			w.strOmit("source", ind.Source)
			if ind.Severity != 0 {
				w.text("severity", ind.Severity)
			}
			w.intOmit("score", int64(ind.Score))
			w.intOmit("confidence", int64(ind.Confidence))
			if len(ind.Tags) > 0 {
				w.strings("tags", ind.Tags)
			}
			w.strOmit("description", ind.Description)
			if !ind.ValidFrom.IsZero() {
				w.time("valid_from", ind.ValidFrom)
			}
			if !ind.ValidUntil.IsZero() {
				w.time("valid_until", ind.ValidUntil)
			}
			w.close()
		}
		w.b = append(w.b, ']')
	}
	w.text("severity", d.Severity)
	w.key("event")
	appendEvent(&w, &d.Event)
	w.close()
	return w.b, w.ok
}

func appendEvent(w *jsonWriter, ev *Event) {
	w.open()
	w.str("schema", ev.Schema)
	w.str("id", ev.ID)
	w.time("time", ev.Time)
	w.host("host", &ev.Host)
	w.str("kind", string(ev.Kind))
	if f := ev.File; f != nil {
		w.key("file")
		w.open()
		w.strOmit("path", f.Path)
		w.strOmit("name", f.Name)
		w.intOmit("size", f.Size)
		w.strOmit("md5", f.MD5)
		w.strOmit("sha1", f.SHA1)
		w.strOmit("sha256", f.SHA256)
		w.strOmit("sha512", f.SHA512)
		w.close()
	}
	if p := ev.Process; p != nil {
		w.key("process")
		w.open()
		w.intOmit("pid", int64(p.PID))
		w.strOmit("name", p.Name)
		w.strOmit("path", p.Path)
		w.strOmit("command_line", p.CommandLine)
		w.intOmit("parent_pid", int64(p.ParentPID))
		w.strOmit("parent_name", p.ParentName)
		w.strOmit("sha256", p.SHA256)
		w.close()
	}
	if n := ev.Network; n != nil {
		w.key("network")
		w.open()
		w.strOmit("protocol", n.Protocol)
		w.strOmit("direction", n.Direction)
		w.strOmit("local_address", n.LocalAddress)
		w.intOmit("local_port", int64(n.LocalPort))
		w.strOmit("remote_address", n.RemoteAddress)
		w.intOmit("remote_port", int64(n.RemotePort))
		w.close()
	}
	if q := ev.DNS; q != nil {
		w.key("dns")
		w.open()
		w.str("query", q.Query)
		if len(q.Answers) > 0 {
			w.strings("answers", q.Answers)
		}
		w.close()
	}
	if h := ev.HTTP; h != nil {
		w.key("http")
		w.open()
		w.str("url", h.URL)
		w.strOmit("method", h.Method)
		w.close()
	}
	if g := ev.Registry; g != nil {
		w.key("registry")
		w.open()
		w.str("key", g.Key)
		w.strOmit("value_name", g.ValueName)
		w.strOmit("data", g.Data)
		w.close()
	}
	if m := ev.Mutex; m != nil {
		w.key("mutex")
		w.open()
		w.str("name", m.Name)
		w.close()
	}
	w.close()
}
