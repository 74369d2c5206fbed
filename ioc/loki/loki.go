package loki

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/logic"
)

// List is the kind of a Loki list.
type List uint8

// The lists.
const (
	HashList     List = iota + 1 // hash-iocs.txt
	FilenameList                 // filename-iocs.txt
	C2List                       // c2-iocs.txt
)

func (l List) String() string {
	switch l {
	case HashList:
		return "hash"
	case FilenameList:
		return "filename"
	case C2List:
		return "c2"
	}
	return "list(" + strconv.Itoa(int(l)) + ")"
}

// ListOf returns the list a file holds, from its name: names containing
// "hash-iocs", "filename-iocs" or "c2-iocs" (Loki's own, and custom lists
// named after them, such as "my-hash-iocs.txt").
func ListOf(name string) (List, bool) {
	n := strings.ToLower(path.Base(strings.ReplaceAll(name, `\`, "/")))
	switch {
	case strings.Contains(n, "hash-iocs"):
		return HashList, true
	case strings.Contains(n, "filename-iocs"):
		return FilenameList, true
	case strings.Contains(n, "c2-iocs"):
		return C2List, true
	}
	return 0, false
}

// Config says how to read one list. The zero value is usable.
type Config struct {
	// Name is the list's name: the file named in errors and the Source of
	// its indicators. Default: the list's usual file name.
	Name string
	// Severity is the severity of entries without a score. Default:
	// SeverityUnknown.
	Severity ioc.Severity
	// Strict makes a file name expression in Python syntax that Go's RE2
	// lacks (look-around, back-references) an error instead of a Warning.
	Strict bool
}

// Result is what a list holds.
type Result struct {
	// Indicators are the atomic indicators (hash and C2 lists).
	Indicators []ioc.Indicator
	// Trees are the file name rules: engine atomic, rule "<file>:<line>"
	// (the list entry), Name the regular expression, Severity from the
	// entry's score. They carry no indicator: a regular expression is not a
	// value of any indicator kind, so a detection names the entry by its
	// rule and the path that matched is in its event.
	Trees []*logic.Tree
	// Warnings are the entries skipped, each "<file>:<line>: why": file
	// name expressions in Python syntax that RE2 lacks, and the digests of
	// an empty file or a lone line break, which Loki ignores too (they
	// would match every such file).
	Warnings []string
}

// MaxLine is the longest line a list may have, in bytes.
const MaxLine = 1 << 20

// Parse reads a list of kind list from r. It returns an *Error for the
// first bad line: a value that is not a digest, address, prefix or domain,
// a score that is not an integer, a regular expression that does not
// compile, too many fields.
func Parse(r io.Reader, list List, cfg Config) (*Result, error) {
	name := cfg.Name
	if name == "" {
		switch list {
		case HashList:
			name = "hash-iocs.txt"
		case FilenameList:
			name = "filename-iocs.txt"
		default:
			name = "c2-iocs.txt"
		}
	}
	if list < HashList || list > C2List {
		return nil, &Error{File: name, Reason: fmt.Sprintf("unknown list kind %d", list)}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	res := &Result{}
	line := 0
	comment := ""
	for sc.Scan() {
		line++
		text := strings.TrimSpace(string(bytes.TrimPrefix(sc.Bytes(), []byte("\ufeff"))))
		if text == "" || strings.HasPrefix(text, "#") {
			// Loki describes the C2 entries below a comment line with it;
			// an empty line ends the block.
			comment = strings.TrimSpace(strings.TrimLeft(text, "#"))
			continue
		}
		var err error
		switch list {
		case HashList:
			err = res.hash(text, name, line, cfg.Severity)
		case FilenameList:
			err = res.filename(text, name, line, cfg)
		case C2List:
			err = res.c2(text, name, comment, cfg.Severity)
		}
		if err != nil {
			return nil, &Error{File: name, Line: line, Reason: err.Error()}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &Error{File: name, Line: line + 1, Reason: fmt.Sprintf("line longer than %d bytes", MaxLine)}
		}
		return nil, &Error{File: name, Reason: err.Error()}
	}
	return res, nil
}

// score parses a Loki score and returns it clamped to 0-100 with its
// severity.
func score(s string) (int, ioc.Severity, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, 0, fmt.Errorf("score %q is not a non-negative integer", s)
	}
	n = min(n, 100)
	return n, severityOf(n), nil
}

func severityOf(score int) ioc.Severity {
	switch {
	case score >= 90:
		return ioc.SeverityCritical
	case score >= 70:
		return ioc.SeverityHigh
	case score >= 40:
		return ioc.SeverityMedium
	}
	return ioc.SeverityLow
}

func (res *Result) add(ind ioc.Indicator) error {
	n, err := ind.Normalized()
	if err != nil {
		var ie *ioc.IndicatorError
		if errors.As(err, &ie) {
			return fmt.Errorf("%s %q: %s", ind.Kind, ind.Value, ie.Reason)
		}
		return err
	}
	res.Indicators = append(res.Indicators, n)
	return nil
}

// trivial are the digests of an empty file, "\n" and "\r\n", in lower
// case: Loki skips them, as every such file would match.
var trivial = map[string]bool{
	"d41d8cd98f00b204e9800998ecf8427e":                                 true,
	"da39a3ee5e6b4b0d3255bfef95601890afd80709":                         true,
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855": true,
	"68b329da9893e34099c7d8ad5cb9c940":                                 true,
	"adc83b19e793491b1c6ea0fd8b46cd9f32e592fc":                         true,
	"01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b": true,
	"81051bcc2cf1bedf378224b0a93e2877":                                 true,
	"ba8ab5a0280b953aa97435ff8946cbcbb2755a27":                         true,
	"7eb70257593da06f682a3ddda54a9d260d4fc514f645237f5ca74b08f8da61a6": true,
}

func (res *Result) hash(text, name string, line int, sev ioc.Severity) error {
	parts := strings.SplitN(text, ";", 3)
	h := strings.TrimSpace(parts[0])
	if trivial[strings.ToLower(h)] {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s:%d: %s is the digest of an empty file or a lone line break; skipped", name, line, h))
		return nil
	}
	ind := ioc.Indicator{Value: h, Source: name, Severity: sev}
	switch len(h) {
	case 32:
		ind.Kind = ioc.KindMD5
	case 40:
		ind.Kind = ioc.KindSHA1
	case 64:
		ind.Kind = ioc.KindSHA256
	case 128:
		ind.Kind = ioc.KindSHA512
	default:
		return fmt.Errorf("%q is not an MD5, SHA-1, SHA-256 or SHA-512 digest (it has %d characters)", h, len(h))
	}
	switch len(parts) {
	case 2:
		ind.Description = strings.TrimSpace(parts[1])
	case 3:
		var err error
		if ind.Score, ind.Severity, err = score(parts[1]); err != nil {
			return err
		}
		ind.Description = strings.TrimSpace(parts[2])
	}
	return res.add(ind)
}

func (res *Result) c2(text, name, comment string, sev ioc.Severity) error {
	parts := strings.Split(text, ";")
	if len(parts) > 2 {
		return fmt.Errorf("%d fields; a C2 entry is VALUE or VALUE;SCORE", len(parts))
	}
	v := strings.TrimSpace(parts[0])
	ind := ioc.Indicator{Value: v, Source: name, Severity: sev, Description: comment}
	if len(parts) == 2 {
		var err error
		if ind.Score, ind.Severity, err = score(parts[1]); err != nil {
			return err
		}
	}
	switch a, err := netip.ParseAddr(strings.Trim(v, "[]")); {
	case strings.Contains(v, "/"):
		ind.Kind = ioc.KindCIDR
	case err == nil && a.Unmap().Is4():
		ind.Kind = ioc.KindIPv4
	case err == nil:
		ind.Kind = ioc.KindIPv6
	default:
		ind.Kind = ioc.KindDomain
	}
	return res.add(ind)
}

func (res *Result) filename(text, name string, line int, cfg Config) error {
	sev := cfg.Severity
	parts := strings.Split(text, ";")
	if len(parts) > 3 {
		return fmt.Errorf("%d fields; a file name entry is REGEX;SCORE;FALSE_POSITIVE_REGEX", len(parts))
	}
	pattern := strings.TrimSpace(parts[0])
	if pattern == "" {
		return fmt.Errorf("empty regular expression")
	}
	if len(parts) >= 2 && strings.TrimSpace(parts[1]) != "" {
		var err error
		if _, sev, err = score(parts[1]); err != nil {
			return err
		}
	}
	fields := []logic.Field{logic.FilePath, logic.ProcPath}
	fp := ""
	if len(parts) == 3 {
		fp = strings.TrimSpace(parts[2])
	}
	for _, re := range []string{pattern, fp} {
		if why, ok := logic.PCREOnly(re); ok {
			if cfg.Strict {
				return fmt.Errorf("regular expression %q: %s, which Go's RE2 engine does not support", re, why)
			}
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s:%d: regular expression %q: %s, which Go's RE2 engine does not support; skipped", name, line, re, why))
			return nil
		}
	}
	match, err := logic.NewCond(logic.Cond{Fields: fields, Op: logic.OpRegex, Values: []string{pattern}})
	if err != nil {
		return fmt.Errorf("regular expression %q: %s", pattern, reason(err))
	}
	root := match
	if fp != "" {
		notFP, err := logic.NewCond(logic.Cond{Fields: fields, Op: logic.OpRegex, Values: []string{fp}, Negate: true})
		if err != nil {
			return fmt.Errorf("false-positive regular expression %q: %s", fp, reason(err))
		}
		root = logic.And(match, notFP)
	}
	res.Trees = append(res.Trees, &logic.Tree{
		ID: fmt.Sprintf("%s:%d", name, line), Engine: ioc.EngineAtomic, Source: name, Severity: sev, Name: pattern, Root: root,
	})
	return nil
}

// reason strips the package prefix of a logic error.
func reason(err error) string {
	s := err.Error()
	if i := strings.Index(s, "regular expression "); i >= 0 {
		if j := strings.Index(s[i:], ": "); j >= 0 {
			return s[i+j+2:]
		}
	}
	return s
}
