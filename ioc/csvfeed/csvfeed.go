package csvfeed

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/cordonsec/cordon/ioc"
)

// Config says how to read one feed. The zero value is usable.
type Config struct {
	// Name is the feed's name: the file named in errors, and the Source of
	// rows without a "source" column. Default: "csv".
	Name string
	// Severity is the severity of rows without one. Default: SeverityUnknown.
	Severity ioc.Severity
	// SizeHint, when positive, is about how many rows the feed has, so the
	// result is allocated once.
	SizeHint int
}

// Parse reads a CSV feed from r. It returns the indicators, normalized, in
// row order, or an *Error for the first bad row (an unknown type, a value
// not of its type, a bad severity, score or date, a row with the wrong
// number of fields, a missing type or value column).
func Parse(r io.Reader, cfg Config) ([]ioc.Indicator, error) {
	name := cfg.Name
	if name == "" {
		name = "csv"
	}
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	fail := func(line, col int, format string, args ...any) ([]ioc.Indicator, error) {
		return nil, &Error{File: name, Line: line, Column: col, Reason: fmt.Sprintf(format, args...)}
	}
	readErr := func(err error) ([]ioc.Indicator, error) {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return fail(pe.Line, pe.Column, "%v", pe.Err)
		}
		return fail(0, 0, "%v", err)
	}
	head, err := cr.Read()
	if err == io.EOF {
		return fail(0, 0, "empty feed: a header row naming at least type and value is needed")
	}
	if err != nil {
		return readErr(err)
	}
	cols := map[string]int{}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		h = strings.ReplaceAll(h, " ", "_")
		if _, dup := cols[h]; dup && h != "" {
			line, c := cr.FieldPos(i)
			return fail(line, c, "column %q appears twice", h)
		}
		cols[h] = i
	}
	for _, need := range []string{"type", "value"} {
		if _, ok := cols[need]; !ok {
			line, _ := cr.FieldPos(0)
			return fail(line, 0, "the header has no %q column (it must name at least type and value)", need)
		}
	}
	// Column positions, looked up once: -1 when absent.
	pos := map[string]int{}
	for _, n := range []string{"type", "value", "id", "source", "description", "severity", "score", "confidence", "tags", "valid_from", "valid_until"} {
		pos[n] = -1
		if i, ok := cols[n]; ok {
			pos[n] = i
		}
	}
	cType, cValue, cID, cSource, cDesc, cSev := pos["type"], pos["value"], pos["id"], pos["source"], pos["description"], pos["severity"]
	cScore, cConf, cTags, cFrom, cUntil := pos["score"], pos["confidence"], pos["tags"], pos["valid_from"], pos["valid_until"]
	get := func(rec []string, i int) (string, int) {
		if i < 0 {
			return "", -1
		}
		return strings.TrimSpace(rec[i]), i
	}
	inds := make([]ioc.Indicator, 0, max(0, min(cfg.SizeHint, 1<<24)))
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return readErr(err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		at := func(i int) int {
			_, c := cr.FieldPos(i)
			return c
		}
		typ, ti := get(rec, cType)
		val, vi := get(rec, cValue)
		kind, err := ParseType(typ, val)
		if err != nil {
			return fail(line, at(ti), "%v", err)
		}
		ind := ioc.Indicator{Kind: kind, Value: val, Source: name, Severity: cfg.Severity}
		if v, i := get(rec, cID); i >= 0 {
			ind.ID = v
		}
		if v, i := get(rec, cSource); i >= 0 && v != "" {
			ind.Source = v
		}
		if v, i := get(rec, cDesc); i >= 0 {
			ind.Description = v
		}
		if v, i := get(rec, cSev); i >= 0 && v != "" {
			if ind.Severity, err = ioc.ParseSeverity(v); err != nil {
				return fail(line, at(i), "severity %q is not one of low, medium, high, critical", v)
			}
		}
		for _, f := range [...]struct {
			name string
			col  int
			dst  *int
		}{{"score", cScore, &ind.Score}, {"confidence", cConf, &ind.Confidence}} {
			if v, i := get(rec, f.col); i >= 0 && v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 || n > 100 {
					return fail(line, at(i), "%s %q is not an integer in 0-100", f.name, v)
				}
				*f.dst = n
			}
		}
		if v, i := get(rec, cTags); i >= 0 && v != "" {
			ind.Tags = strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == '|' })
		}
		for _, f := range [...]struct {
			name string
			col  int
			dst  *time.Time
		}{{"valid_from", cFrom, &ind.ValidFrom}, {"valid_until", cUntil, &ind.ValidUntil}} {
			if v, i := get(rec, f.col); i >= 0 && v != "" {
				t, err := time.Parse(time.RFC3339, v)
				if err != nil {
					return fail(line, at(i), "%s %q is not an RFC 3339 time", f.name, v)
				}
				*f.dst = t
			}
		}
		n, err := ind.Normalized()
		if err != nil {
			var ie *ioc.IndicatorError
			if errors.As(err, &ie) {
				c := at(vi)
				if !errors.Is(err, ioc.ErrInvalidValue) {
					c = 0
				}
				return fail(line, c, "%s %q: %s", kind, val, ie.Reason)
			}
			return fail(line, 0, "%v", err)
		}
		inds = append(inds, n)
	}
	return inds, nil
}

// ParseType returns the indicator kind a feed's type name stands for. It
// accepts the ioc.Kind names and these aliases: ip, ip-src, ip-dst,
// ipv4-addr, ipv6-addr (ipv4, ipv6 or cidr, from value), sha-1, sha-256,
// sha-512, domain-name (domain, with subdomains), fqdn and host (hostname,
// exact), uri, link, path, filepath, filename, process, regkey, registry,
// mutant.
func ParseType(typ, value string) (ioc.Kind, error) {
	t := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(typ)), "_", "-")
	switch t {
	case "":
		return 0, fmt.Errorf("type is empty")
	case "ip", "ip-src", "ip-dst", "ipv4-addr", "ipv6-addr", "ip-addr", "ipaddress":
		v := strings.TrimSpace(value)
		if strings.Contains(v, "/") {
			return ioc.KindCIDR, nil
		}
		if a, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil && !a.Unmap().Is4() {
			return ioc.KindIPv6, nil
		}
		return ioc.KindIPv4, nil
	case "sha-1":
		return ioc.KindSHA1, nil
	case "sha-256":
		return ioc.KindSHA256, nil
	case "sha-512":
		return ioc.KindSHA512, nil
	case "domain-name":
		return ioc.KindDomain, nil
	case "host", "fqdn":
		// A fully qualified domain name names one host, not its
		// subdomains.
		return ioc.KindHostname, nil
	case "uri", "link":
		return ioc.KindURL, nil
	case "path", "filepath", "file":
		return ioc.KindFilePath, nil
	case "filename":
		return ioc.KindFileName, nil
	case "process", "processname":
		return ioc.KindProcessName, nil
	case "regkey", "registry", "registrykey":
		return ioc.KindRegistryKey, nil
	case "mutant":
		return ioc.KindMutex, nil
	}
	k, err := ioc.ParseKind(t)
	if err != nil {
		return 0, fmt.Errorf("type %q is not an indicator kind (%s, or an alias such as ip, filename, regkey)", typ, kindNames())
	}
	return k, nil
}

func kindNames() string {
	var names []string
	for _, k := range ioc.Kinds() {
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}
