package feed

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/csvfeed"
	"github.com/cordonsec/cordon/ioc/feed/logic"
	"github.com/cordonsec/cordon/ioc/loki"
	"github.com/cordonsec/cordon/ioc/misp"
	"github.com/cordonsec/cordon/ioc/openioc"
	"github.com/cordonsec/cordon/ioc/stix"
	"github.com/cordonsec/cordon/ioc/yara"
)

// Format is a feed format.
type Format string

// The formats.
const (
	FormatOpenIOC      Format = "openioc"
	FormatSTIX         Format = "stix"
	FormatMISP         Format = "misp"
	FormatCSV          Format = "csv"
	FormatLokiHash     Format = "loki-hash"
	FormatLokiFilename Format = "loki-filename"
	FormatLokiC2       Format = "loki-c2"
)

// Detect returns the format of a feed file from its content, and for Loki
// lists from its name:
//
//   - XML: OpenIOC;
//   - JSON whose first object has "Event" or "response": MISP; "type"
//     bundle or indicator: STIX;
//   - text whose first line (not a # comment) is a header naming type and
//     value: CSV;
//   - a name containing hash-iocs, filename-iocs or c2-iocs: that Loki list;
//   - other text: a Loki list, told by its first entry (a digest: hashes;
//     an address, prefix or domain name: C2; anything else: file names).
//
// It returns an error wrapping ErrUnknownFormat when none fits.
func Detect(name string, data []byte) (Format, error) {
	trim := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\ufeff")))
	if len(trim) == 0 {
		return "", fmt.Errorf("%w: the file is empty", ErrUnknownFormat)
	}
	switch trim[0] {
	case '<':
		return FormatOpenIOC, nil
	case '{', '[':
		return detectJSON(trim)
	}
	first := firstLine(trim)
	if isCSVHeader(first) {
		return FormatCSV, nil
	}
	if l, ok := loki.ListOf(name); ok {
		switch l {
		case loki.HashList:
			return FormatLokiHash, nil
		case loki.FilenameList:
			return FormatLokiFilename, nil
		}
		return FormatLokiC2, nil
	}
	entry, _, _ := strings.Cut(first, ";")
	entry = strings.TrimSpace(entry)
	switch {
	case isHex(entry) && (len(entry) == 32 || len(entry) == 40 || len(entry) == 64 || len(entry) == 128):
		return FormatLokiHash, nil
	case isAddrOrDomain(entry):
		return FormatLokiC2, nil
	case strings.Contains(first, ";") || strings.ContainsAny(entry, `\/^$*+?[(`):
		return FormatLokiFilename, nil
	}
	return "", fmt.Errorf("%w: not XML, not JSON, no CSV header naming type and value, not a Loki list", ErrUnknownFormat)
}

func detectJSON(data []byte) (Format, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return "", fmt.Errorf("%w: malformed JSON: %v", ErrUnknownFormat, err)
	}
	if tok == json.Delim('[') {
		if !dec.More() {
			return "", fmt.Errorf("%w: an empty JSON array", ErrUnknownFormat)
		}
		if tok, err = dec.Token(); err != nil {
			return "", fmt.Errorf("%w: malformed JSON: %v", ErrUnknownFormat, err)
		}
	}
	if tok != json.Delim('{') {
		return "", fmt.Errorf("%w: JSON that is neither an object nor an array of objects", ErrUnknownFormat)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return "", fmt.Errorf("%w: malformed JSON: %v", ErrUnknownFormat, err)
		}
		key, _ := k.(string)
		switch key {
		case "Event", "response":
			return FormatMISP, nil
		case "type":
			var v any
			if err := dec.Decode(&v); err != nil {
				return "", fmt.Errorf("%w: malformed JSON: %v", ErrUnknownFormat, err)
			}
			if s, _ := v.(string); s != "" {
				return FormatSTIX, nil
			}
			continue
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", fmt.Errorf("%w: malformed JSON: %v", ErrUnknownFormat, err)
		}
	}
	return "", fmt.Errorf("%w: JSON with neither \"type\" (STIX) nor \"Event\" (MISP)", ErrUnknownFormat)
}

func firstLine(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return ""
}

func isCSVHeader(line string) bool {
	var typ, val bool
	for _, f := range strings.Split(strings.ToLower(line), ",") {
		switch strings.Trim(strings.TrimSpace(f), `"`) {
		case "type":
			typ = true
		case "value":
			val = true
		}
	}
	return typ && val
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s != ""
}

func isAddrOrDomain(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := ioc.Normalize(ioc.KindDomain, s)
	return err == nil && strings.Contains(s, ".")
}

// Options say how to read feed files. The zero value is usable.
type Options struct {
	// Severity is the severity of indicators whose feed gives none
	// (OpenIOC and STIX never do). Default: SeverityUnknown.
	Severity ioc.Severity
	// Strict makes OpenIOC terms, STIX indicators and Loki file name
	// expressions that cordon cannot evaluate errors instead of warnings.
	Strict bool
}

// YARARules are the compiled YARA rules of one MISP yara attribute or
// STIX indicator with pattern_type yara.
type YARARules struct {
	Feed  string // the feed file's name
	ID    string // the attribute's or indicator's id
	Where string // its JSON path
	Rules *yara.Rules
}

// File is what one feed file holds, parsed.
type File struct {
	Name   string
	Format Format
	// Indicators go into the atomic Set; their Source is the file's name
	// unless the feed names one per entry (CSV's source column).
	Indicators []ioc.Indicator
	// Trees are the OpenIOC, STIX and other logic indicators.
	Trees []*logic.Tree
	// YARA are the compiled YARA rules the feed carries.
	YARA []YARARules
	// Warnings are what was skipped and why (unsupported terms, indicators,
	// attribute types).
	Warnings []string
}

// Parse detects the format of the file named name (a base name: it is the
// feed's Source) with content data, and parses it. The error is a
// *FileError wrapping the parser's error, which names the line or JSON path
// and what is wrong; one bad entry rejects the whole file.
func Parse(name string, data []byte, opts Options) (*File, error) {
	name = filepath.Base(name)
	format, err := Detect(name, data)
	if err != nil {
		return nil, &FileError{File: name, Err: err}
	}
	f, err := parseAs(name, format, data, opts)
	if err != nil {
		return nil, &FileError{File: name, Err: err}
	}
	return f, nil
}

func parseAs(name string, format Format, data []byte, opts Options) (*File, error) {
	f := &File{Name: name, Format: format}
	switch format {
	case FormatCSV:
		inds, err := csvfeed.Parse(bytes.NewReader(data), csvfeed.Config{Name: name, Severity: opts.Severity,
			SizeHint: bytes.Count(data, []byte("\n"))})
		if err != nil {
			return nil, err
		}
		f.Indicators = inds
	case FormatLokiHash, FormatLokiFilename, FormatLokiC2:
		list := map[Format]loki.List{FormatLokiHash: loki.HashList, FormatLokiFilename: loki.FilenameList, FormatLokiC2: loki.C2List}[format]
		res, err := loki.Parse(bytes.NewReader(data), list, loki.Config{Name: name, Severity: opts.Severity, Strict: opts.Strict})
		if err != nil {
			return nil, err
		}
		f.Indicators, f.Trees, f.Warnings = res.Indicators, res.Trees, res.Warnings
	case FormatMISP:
		res, err := misp.Parse(data, misp.Config{Name: name, Severity: opts.Severity})
		if err != nil {
			return nil, err
		}
		f.Indicators, f.Trees, f.Warnings = res.Indicators, res.Trees, res.Warnings
		for _, y := range res.YARA {
			if err := f.addYARA(y.ID, y.Path, y.Source); err != nil {
				return nil, err
			}
		}
	case FormatOpenIOC:
		res, err := openioc.Parse(data, openioc.Config{Name: name, Severity: opts.Severity, Strict: opts.Strict})
		if err != nil {
			return nil, err
		}
		f.Indicators, f.Trees = res.Indicators, res.Trees
		for _, w := range res.Warnings {
			f.Warnings = append(f.Warnings, w.String())
		}
	case FormatSTIX:
		res, err := stix.Parse(data, stix.Config{Name: name, Severity: opts.Severity, Strict: opts.Strict})
		if err != nil {
			return nil, err
		}
		f.Indicators, f.Trees = res.Indicators, res.Trees
		for _, w := range res.Warnings {
			f.Warnings = append(f.Warnings, w.String())
		}
		for _, y := range res.YARA {
			if err := f.addYARA(y.ID, y.Path, y.Source); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownFormat, format)
	}
	// The trees must compile on their own, so a bad one rejects this file
	// and not the snapshot.
	if _, err := logic.Compile(f.Trees); err != nil {
		return nil, err
	}
	return f, nil
}

// YARAError is a YARA rule carried by a feed that does not compile: where
// in the feed, and the compiler's error (a *yara.CompileError, whose line
// and column count in the rule's source).
type YARAError struct {
	Where string // JSON path of the attribute or indicator
	ID    string
	Err   error
}

func (e *YARAError) Error() string {
	return fmt.Sprintf("%s (%s): YARA rule: %v", e.Where, e.ID, e.Err)
}

func (e *YARAError) Unwrap() error { return e.Err }

func (f *File) addYARA(id, where, src string) error {
	rules, err := yara.Compile(src)
	if err != nil {
		return &YARAError{Where: where, ID: id, Err: err}
	}
	f.YARA = append(f.YARA, YARARules{Feed: f.Name, ID: id, Where: where, Rules: rules})
	return nil
}
