package response

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"

	"github.com/cordonsec/cordon/ioc"
)

// Env is the environment a rule's `when`, its suppression key and the
// templates in its actions are compiled against and evaluated in. Field
// names in expressions are the lower-case names given in the `expr` tags
// (detection.severity, indicator.tags, event.file.path, host.id …).
//
// A rule is evaluated once per indicator of the detection, in order, with
// Indicator bound to that indicator and Match.Index to its position; the
// rule fires (once per detection) for the first indicator that makes
// `when` true, and that indicator is the one its templates and suppression
// key see. A detection without indicators (a YARA rule match) is evaluated
// once with a zero Indicator and Match.Index -1.
type Env struct {
	Detection DetectionVars `expr:"detection"`
	Indicator IndicatorVars `expr:"indicator"`
	Event     EventVars     `expr:"event"`
	Host      HostVars      `expr:"host"`
	Match     MatchVars     `expr:"match"`
}

// DetectionVars is `detection` in expressions.
type DetectionVars struct {
	ID          string    `expr:"id"`
	Fingerprint string    `expr:"fingerprint"`
	Time        time.Time `expr:"time"`
	// Engine is "atomic", "yara", "openioc" or "stix".
	Engine string `expr:"engine"`
	// Rule is the YARA rule, OpenIOC or STIX id, or "".
	Rule string `expr:"rule"`
	// Severity compares in severity order with another severity or with a
	// severity name: detection.severity >= "high" holds for high and
	// critical. An unknown name in such a comparison is a load error.
	Severity ioc.Severity `expr:"severity"`
	// Indicators are all the detection's indicators.
	Indicators []IndicatorVars `expr:"indicators"`
}

// IndicatorVars is `indicator` in expressions (and an element of
// detection.indicators).
type IndicatorVars struct {
	ID string `expr:"id"`
	// Kind is the kind's wire name ("sha256", "domain", "file-path" …),
	// "" in the zero indicator.
	Kind        string       `expr:"kind"`
	Value       string       `expr:"value"`
	Source      string       `expr:"source"`
	Severity    ioc.Severity `expr:"severity"`
	Score       int          `expr:"score"`
	Confidence  int          `expr:"confidence"`
	Tags        []string     `expr:"tags"`
	Description string       `expr:"description"`
}

// HostVars is `host` in expressions: the detection's host.
type HostVars struct {
	ID        string   `expr:"id"`
	Name      string   `expr:"name"`
	OS        string   `expr:"os"`
	Addresses []string `expr:"addresses"`
	// Tags are the host's tags in force (set by the tag action), when the
	// engine's Tagger is also a TagReader; empty otherwise.
	Tags []string `expr:"tags"`
}

// MatchVars is `match` in expressions: where the evaluation stands.
type MatchVars struct {
	// Index is the position of indicator in detection.indicators, -1 when
	// the detection has none.
	Index int `expr:"index"`
	// Count is len(detection.indicators).
	Count int `expr:"count"`
	// Time is the engine clock's time of the evaluation.
	Time time.Time `expr:"time"`
}

// EventVars is `event` in expressions. Every block is present; the blocks
// other than the event's kind are zero.
type EventVars struct {
	ID       string       `expr:"id"`
	Time     time.Time    `expr:"time"`
	Kind     string       `expr:"kind"`
	File     FileVars     `expr:"file"`
	Process  ProcessVars  `expr:"process"`
	Network  NetworkVars  `expr:"network"`
	DNS      DNSVars      `expr:"dns"`
	HTTP     HTTPVars     `expr:"http"`
	Registry RegistryVars `expr:"registry"`
	Mutex    MutexVars    `expr:"mutex"`
}

// FileVars is event.file.
type FileVars struct {
	Path   string `expr:"path"`
	Name   string `expr:"name"`
	Size   int64  `expr:"size"`
	MD5    string `expr:"md5"`
	SHA1   string `expr:"sha1"`
	SHA256 string `expr:"sha256"`
	SHA512 string `expr:"sha512"`
}

// ProcessVars is event.process.
type ProcessVars struct {
	PID         int    `expr:"pid"`
	Name        string `expr:"name"`
	Path        string `expr:"path"`
	CommandLine string `expr:"command_line"`
	ParentPID   int    `expr:"parent_pid"`
	ParentName  string `expr:"parent_name"`
	SHA256      string `expr:"sha256"`
}

// NetworkVars is event.network.
type NetworkVars struct {
	Protocol      string `expr:"protocol"`
	Direction     string `expr:"direction"`
	LocalAddress  string `expr:"local_address"`
	LocalPort     int    `expr:"local_port"`
	RemoteAddress string `expr:"remote_address"`
	RemotePort    int    `expr:"remote_port"`
}

// DNSVars is event.dns.
type DNSVars struct {
	Query   string   `expr:"query"`
	Answers []string `expr:"answers"`
}

// HTTPVars is event.http.
type HTTPVars struct {
	URL    string `expr:"url"`
	Method string `expr:"method"`
}

// RegistryVars is event.registry.
type RegistryVars struct {
	Key       string `expr:"key"`
	ValueName string `expr:"value_name"`
	Data      string `expr:"data"`
}

// MutexVars is event.mutex.
type MutexVars struct {
	Name string `expr:"name"`
}

func indicatorVars(ind ioc.Indicator) IndicatorVars {
	kind := ""
	if ind.Kind.Valid() {
		kind = ind.Kind.String()
	}
	return IndicatorVars{
		ID: ind.ID, Kind: kind, Value: ind.Value, Source: ind.Source, Severity: ind.Severity,
		Score: ind.Score, Confidence: ind.Confidence, Tags: ind.Tags, Description: ind.Description,
	}
}

// NewEnv returns the environment for d evaluated at now, with no
// indicator bound (Match.Index -1). Bind binds one.
func NewEnv(d *ioc.Detection, now time.Time) *Env {
	e := &Env{
		Detection: DetectionVars{
			ID: d.ID, Fingerprint: d.Fingerprint, Time: d.Time, Engine: string(d.Engine), Rule: d.Rule,
			Severity: d.Severity, Indicators: make([]IndicatorVars, len(d.Indicators)),
		},
		Host:  HostVars{ID: d.Host.ID, Name: d.Host.Name, OS: d.Host.OS, Addresses: d.Host.Addresses},
		Match: MatchVars{Index: -1, Count: len(d.Indicators), Time: now},
	}
	for i, ind := range d.Indicators {
		e.Detection.Indicators[i] = indicatorVars(ind)
	}
	ev := &d.Event
	e.Event = EventVars{ID: ev.ID, Time: ev.Time, Kind: string(ev.Kind)}
	if f := ev.File; f != nil {
		e.Event.File = FileVars{Path: f.Path, Name: f.Name, Size: f.Size, MD5: f.MD5, SHA1: f.SHA1, SHA256: f.SHA256, SHA512: f.SHA512}
	}
	if p := ev.Process; p != nil {
		e.Event.Process = ProcessVars{PID: p.PID, Name: p.Name, Path: p.Path, CommandLine: p.CommandLine,
			ParentPID: p.ParentPID, ParentName: p.ParentName, SHA256: p.SHA256}
	}
	if n := ev.Network; n != nil {
		e.Event.Network = NetworkVars{Protocol: n.Protocol, Direction: n.Direction, LocalAddress: n.LocalAddress,
			LocalPort: n.LocalPort, RemoteAddress: n.RemoteAddress, RemotePort: n.RemotePort}
	}
	if x := ev.DNS; x != nil {
		e.Event.DNS = DNSVars{Query: x.Query, Answers: x.Answers}
	}
	if x := ev.HTTP; x != nil {
		e.Event.HTTP = HTTPVars{URL: x.URL, Method: x.Method}
	}
	if x := ev.Registry; x != nil {
		e.Event.Registry = RegistryVars{Key: x.Key, ValueName: x.ValueName, Data: x.Data}
	}
	if x := ev.Mutex; x != nil {
		e.Event.Mutex = MutexVars{Name: x.Name}
	}
	return e
}

// Bind binds indicator i (or the zero indicator when i < 0).
func (e *Env) Bind(i int) {
	if i < 0 || i >= len(e.Detection.Indicators) {
		e.Indicator = IndicatorVars{}
		e.Match.Index = -1
		return
	}
	e.Indicator = e.Detection.Indicators[i]
	e.Match.Index = i
}

// The helper functions available in expressions. They are pure: they
// depend only on their arguments, never block and never panic.
//
//	inCIDR(addr string, cidr string) bool          addr lies in cidr ("192.0.2.0/24"); false when either does not parse
//	hasTag(tags []string, tag string) bool         tag is one of tags (exact)
//	hasAnyTag(tags []string, want []string) bool   one of want is one of tags
//	severityAtLeast(s severity, name string) bool  s >= the named severity
//	severity(name string) severity                 the named severity ("high")
//	hostAddressIn(addrs []string, cidr string) bool one of addrs lies in cidr
var helperOptions = []expr.Option{
	expr.Function("inCIDR", func(p ...any) (any, error) {
		return inCIDR(p[0].(string), p[1].(string)), nil
	}, inCIDR),
	expr.Function("hostAddressIn", func(p ...any) (any, error) {
		for _, a := range p[0].([]string) {
			if inCIDR(a, p[1].(string)) {
				return true, nil
			}
		}
		return false, nil
	}, new(func([]string, string) bool)),
	expr.Function("hasTag", func(p ...any) (any, error) {
		return slices.Contains(p[0].([]string), p[1].(string)), nil
	}, new(func([]string, string) bool)),
	expr.Function("hasAnyTag", func(p ...any) (any, error) {
		tags := p[0].([]string)
		for _, w := range p[1].([]any) {
			if s, ok := w.(string); ok && slices.Contains(tags, s) {
				return true, nil
			}
		}
		return false, nil
	}, new(func([]string, []any) bool)),
	expr.Function("severityAtLeast", func(p ...any) (any, error) {
		want, err := parseSeverityName(p[1].(string))
		if err != nil {
			return nil, err
		}
		return p[0].(ioc.Severity) >= want, nil
	}, new(func(ioc.Severity, string) bool)),
	expr.Function("severity", func(p ...any) (any, error) {
		return parseSeverityName(p[0].(string))
	}, new(func(string) ioc.Severity)),
}

// The names of the operator overloads for severities. Each compares a
// severity with a severity name; the name is checked at load.
const (
	sevEQ = "__sevEQ"
	sevNE = "__sevNE"
	sevLT = "__sevLT"
	sevLE = "__sevLE"
	sevGT = "__sevGT"
	sevGE = "__sevGE"
	sevIn = "__sevIn"
)

func severityOptions() []expr.Option {
	type cmp func(a, b ioc.Severity) bool
	ops := []struct {
		op, name string
		f        cmp
	}{
		{"==", sevEQ, func(a, b ioc.Severity) bool { return a == b }},
		{"!=", sevNE, func(a, b ioc.Severity) bool { return a != b }},
		{"<", sevLT, func(a, b ioc.Severity) bool { return a < b }},
		{"<=", sevLE, func(a, b ioc.Severity) bool { return a <= b }},
		{">", sevGT, func(a, b ioc.Severity) bool { return a > b }},
		{">=", sevGE, func(a, b ioc.Severity) bool { return a >= b }},
	}
	var opts []expr.Option
	for _, o := range ops {
		f := o.f
		opts = append(opts,
			expr.Function(o.name, func(p ...any) (any, error) {
				a, err := severityArg(p[0])
				if err != nil {
					return nil, err
				}
				b, err := severityArg(p[1])
				if err != nil {
					return nil, err
				}
				return f(a, b), nil
			}, new(func(ioc.Severity, string) bool), new(func(string, ioc.Severity) bool), new(func(ioc.Severity, ioc.Severity) bool)),
			expr.Operator(o.op, o.name))
	}
	opts = append(opts,
		expr.Function(sevIn, func(p ...any) (any, error) {
			a := p[0].(ioc.Severity)
			for _, x := range p[1].([]any) {
				b, err := severityArg(x)
				if err != nil {
					return nil, err
				}
				if a == b {
					return true, nil
				}
			}
			return false, nil
		}, new(func(ioc.Severity, []any) bool)),
		expr.Operator("in", sevIn))
	return opts
}

func severityArg(v any) (ioc.Severity, error) {
	switch x := v.(type) {
	case ioc.Severity:
		return x, nil
	case string:
		return parseSeverityName(x)
	}
	return 0, fmt.Errorf("%w: %T is not a severity", ErrEval, v)
}

// parseSeverityName accepts the wire names only ("", "low", "medium",
// "high", "critical"), exactly.
func parseSeverityName(s string) (ioc.Severity, error) {
	for sev := ioc.SeverityUnknown; sev <= ioc.SeverityCritical; sev++ {
		if sev.String() == s {
			return sev, nil
		}
	}
	return 0, fmt.Errorf("%w: %q is not a severity (low, medium, high, critical)", ErrEval, s)
}

func inCIDR(addr, cidr string) bool {
	p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(strings.TrimSpace(addr))
	if err != nil {
		return false
	}
	return p.Contains(a.Unmap())
}
