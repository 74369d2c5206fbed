package yara

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxIncludeDepth bounds nested includes (YARA's limit is 16).
const maxIncludeDepth = 16

// segment maps lines of the preprocessed source back to their file.
type segment struct {
	startLine int    // first line of the segment in the combined source (1-based)
	file      string // "" for the source given to Compile
	fileLine  int    // line in file that startLine corresponds to
}

// preprocessed is the source handed to gyp, with a line map.
type preprocessed struct {
	text     string
	segments []segment
}

// position maps a line of the combined source to a file and line.
func (p *preprocessed) position(line int) (string, int) {
	var s segment
	found := false
	for _, seg := range p.segments {
		if seg.startLine <= line {
			s = seg
			found = true
		}
	}
	if !found {
		return "", line
	}
	return s.file, s.fileLine + (line - s.startLine)
}

type preprocessor struct {
	includeDir string
	out        strings.Builder
	line       int // current line of out (1-based)
	segments   []segment
}

// preprocess resolves include directives (inline, so rule order is kept) and
// puts the literal bounds of ranges in parentheses, so that gyp accepts
// ranges such as (0..0) or (-1..n) as YARA does: (0..0) becomes ((0)..(0)).
func preprocess(src, includeDir string) (*preprocessed, error) {
	p := &preprocessor{includeDir: includeDir, line: 1}
	if err := p.run(src, "", "", 0); err != nil {
		return nil, err
	}
	return &preprocessed{text: p.out.String(), segments: p.segments}, nil
}

func (p *preprocessor) write(s string) {
	p.out.WriteString(s)
	p.line += strings.Count(s, "\n")
}

func (p *preprocessor) run(src, file, dir string, depth int) error {
	p.segments = append(p.segments, segment{startLine: p.line, file: file, fileLine: 1})
	line := 1
	i := 0
	n := len(src)
	lastWord := ""
	for i < n {
		c := src[i]
		switch {
		case c == '\n':
			line++
			p.write("\n")
			i++
		case c == '/' && i+1 < n && src[i+1] == '/':
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				j = n - i
			}
			p.write(src[i : i+j])
			i += j
		case c == '/' && i+1 < n && src[i+1] == '*':
			j := strings.Index(src[i+2:], "*/")
			end := n
			if j >= 0 {
				end = i + 2 + j + 2
			}
			chunk := src[i:end]
			line += strings.Count(chunk, "\n")
			p.write(chunk)
			i = end
		case c == '"':
			j := i + 1
			for j < n && src[j] != '"' && src[j] != '\n' {
				if src[j] == '\\' && j+1 < n && src[j+1] != '\n' {
					j++
				}
				j++
			}
			if j < n && src[j] == '"' {
				j++
			}
			lit := src[i:j]
			if lastWord == "include" {
				path, err := strconv.Unquote(lit)
				if err != nil {
					path = strings.Trim(lit, `"`)
				}
				if err := p.include(path, file, dir, line, depth); err != nil {
					return err
				}
				p.segments = append(p.segments, segment{startLine: p.line, file: file, fileLine: line})
				lastWord = ""
				i = j
				continue
			}
			p.write(lit)
			i = j
		case c == '/':
			// A regular expression literal: copy to the closing slash.
			j := i + 1
			for j < n && src[j] != '/' && src[j] != '\n' {
				if src[j] == '\\' && j+1 < n && src[j+1] != '\n' {
					j++
				}
				j++
			}
			if j < n && src[j] == '/' {
				j++
			}
			p.write(src[i:j])
			i = j
		case c == '(':
			if repl, m := rangeLower(src[i:]); m > 0 {
				p.write(repl)
				i += m
				continue
			}
			p.write("(")
			i++
		case c == '.' && i+1 < n && src[i+1] == '.':
			if repl, m := rangeUpper(src[i:]); m > 0 {
				p.write(repl)
				i += m
				continue
			}
			p.write("..")
			i += 2
		case isWordByte(c):
			j := i
			for j < n && isWordByte(src[j]) {
				j++
			}
			w := src[i:j]
			p.write(w)
			if w == "include" {
				// Remove "include" again: the directive is replaced whole.
				s := p.out.String()
				p.out.Reset()
				p.out.WriteString(s[:len(s)-len(w)])
			}
			lastWord = w
			i = j
			continue
		default:
			p.write(string(c))
			i++
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			lastWord = ""
		}
	}
	if lastWord == "include" {
		return &CompileError{Kind: ErrSyntax, File: file, Line: line, Msg: "include without a file name"}
	}
	return nil
}

func (p *preprocessor) include(path, fromFile, dir string, line, depth int) error {
	if p.includeDir == "" {
		return &CompileError{Kind: ErrInclude, File: fromFile, Line: line,
			Msg: fmt.Sprintf("include %q: includes are disabled (no WithIncludeDir)", path)}
	}
	if depth+1 > maxIncludeDepth {
		return &CompileError{Kind: ErrInclude, File: fromFile, Line: line,
			Msg: fmt.Sprintf("include %q: nested too deeply", path)}
	}
	base := dir
	if base == "" {
		base = p.includeDir
	}
	full := path
	if !filepath.IsAbs(full) {
		full = filepath.Join(base, path)
	}
	full = filepath.Clean(full)
	root, err := filepath.Abs(p.includeDir)
	if err != nil {
		return &CompileError{Kind: ErrInclude, File: fromFile, Line: line, Msg: err.Error()}
	}
	abs, err := filepath.Abs(full)
	if err != nil {
		return &CompileError{Kind: ErrInclude, File: fromFile, Line: line, Msg: err.Error()}
	}
	if rel, err := filepath.Rel(root, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return &CompileError{Kind: ErrInclude, File: fromFile, Line: line,
			Msg: fmt.Sprintf("include %q: outside the include directory %s", path, p.includeDir)}
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		return &CompileError{Kind: ErrInclude, File: fromFile, Line: line,
			Msg: fmt.Sprintf("include %q: %v", path, err)}
	}
	p.write("\n")
	return p.run(string(b)+"\n", abs, filepath.Dir(abs), depth+1)
}

// literalBound reads optional blanks, an optional '-' and an integer
// literal at s[i:], returning the bound's text and the index after it.
func literalBound(s string, i int) (string, int, bool) {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	start := i
	if i < len(s) && s[i] == '-' {
		i++
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	digits := i
	for i < len(s) && isWordByte(s[i]) {
		i++
	}
	if i == digits {
		return "", 0, false
	}
	if _, ok := parseIntLiteral(s[digits:i]); !ok {
		return "", 0, false
	}
	text := s[start:i]
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return text, i, true
}

// rangeLower matches "(A" followed by ".." at the start of s, A an integer
// literal (optionally negative), and returns "((A)" and the length before
// the "..". gyp rejects literal bounds that are negative or not increasing;
// YARA accepts them (an empty range matches nothing), so literal bounds are
// hidden from gyp's check in parentheses.
func rangeLower(s string) (string, int) {
	a, i, ok := literalBound(s, 1)
	if !ok || !strings.HasPrefix(s[i:], "..") {
		return "", 0
	}
	return "((" + a + ")", i
}

// rangeUpper matches "..B)" at the start of s, B an integer literal
// (optionally negative), and returns "..(B))" and the length matched.
func rangeUpper(s string) (string, int) {
	b, i, ok := literalBound(s, 2)
	if !ok || i >= len(s) || s[i] != ')' {
		return "", 0
	}
	return "..(" + b + "))", i + 1
}

// parseIntLiteral parses a YARA integer literal (decimal, 0x, 0o, KB/MB).
func parseIntLiteral(s string) (int64, bool) {
	mul := int64(1)
	switch {
	case strings.HasSuffix(s, "KB"):
		mul, s = 1024, s[:len(s)-2]
	case strings.HasSuffix(s, "MB"):
		mul, s = 1024*1024, s[:len(s)-2]
	}
	var v int64
	var err error
	switch {
	case strings.HasPrefix(s, "0x"):
		v, err = strconv.ParseInt(s[2:], 16, 64)
	case strings.HasPrefix(s, "0o"):
		v, err = strconv.ParseInt(s[2:], 8, 64)
	default:
		v, err = strconv.ParseInt(s, 10, 64)
	}
	if err != nil || v > (1<<62)/mul {
		return 0, false
	}
	return v * mul, true
}
