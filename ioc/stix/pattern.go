package stix

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// PatternError is a pattern that does not follow the STIX 2.1 patterning
// grammar: the column (1-based, in runes) and what is wrong.
type PatternError struct {
	Column int
	Reason string
}

func (e *PatternError) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Reason) }

type tokKind uint8

const (
	tEOF tokKind = iota
	tLBrack
	tRBrack
	tLParen
	tRParen
	tComma
	tColon
	tDot
	tStar
	tOp     // = != < <= > >=
	tIdent  // identifiers and keywords
	tString // '…'
	tInt
	tFloat
	tTime   // t'…'
	tHex    // h'…'
	tBinary // b'…'
)

// punct is the kind of each one-byte token; tEOF for other bytes.
var punct = [256]tokKind{'[': tLBrack, ']': tRBrack, '(': tLParen, ')': tRParen, ',': tComma,
	':': tColon, '.': tDot, '*': tStar, '=': tOp}

type token struct {
	kind tokKind
	text string // identifier, operator, or the literal's decoded text
	col  int    // 1-based rune column
}

// lex splits a pattern into tokens.
func lex(src string) ([]token, error) {
	if !utf8.ValidString(src) {
		return nil, &PatternError{Column: 1, Reason: "not valid UTF-8"}
	}
	var toks []token
	col := func(i int) int { return utf8.RuneCountInString(src[:i]) + 1 }
	for i := 0; i < len(src); {
		c := src[i]
		start := i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case punct[c] != tEOF:
			toks = append(toks, token{punct[c], src[i : i+1], col(i)})
			i++
		case c == '!' || c == '<' || c == '>':
			if i+1 < len(src) && src[i+1] == '=' {
				toks = append(toks, token{tOp, src[i : i+2], col(i)})
				i += 2
			} else if c == '!' {
				return nil, &PatternError{Column: col(i), Reason: "'!' not followed by '='"}
			} else {
				toks = append(toks, token{tOp, src[i : i+1], col(i)})
				i++
			}
		case c == '\'':
			s, n, err := quoted(src, i)
			if err != nil {
				return nil, &PatternError{Column: col(i), Reason: err.Error()}
			}
			toks = append(toks, token{tString, s, col(start)})
			i += n
		case (c == 't' || c == 'h' || c == 'b') && i+1 < len(src) && src[i+1] == '\'':
			s, n, err := quoted(src, i+1)
			if err != nil {
				return nil, &PatternError{Column: col(i), Reason: err.Error()}
			}
			k := map[byte]tokKind{'t': tTime, 'h': tHex, 'b': tBinary}[c]
			toks = append(toks, token{k, s, col(start)})
			i += 1 + n
		case c == '-' || c == '+' || '0' <= c && c <= '9':
			j := i + 1
			for j < len(src) && '0' <= src[j] && src[j] <= '9' {
				j++
			}
			kind := tInt
			if j < len(src) && src[j] == '.' && j+1 < len(src) && '0' <= src[j+1] && src[j+1] <= '9' {
				j++
				for j < len(src) && '0' <= src[j] && src[j] <= '9' {
					j++
				}
				kind = tFloat
			}
			if j == i+1 && (c == '-' || c == '+') {
				return nil, &PatternError{Column: col(i), Reason: fmt.Sprintf("%q not followed by a digit", c)}
			}
			toks = append(toks, token{kind, src[i:j], col(i)})
			i = j
		case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			j := i + 1
			for j < len(src) {
				d := src[j]
				if d == '_' || d == '-' || 'a' <= d && d <= 'z' || 'A' <= d && d <= 'Z' || '0' <= d && d <= '9' {
					j++
					continue
				}
				break
			}
			toks = append(toks, token{tIdent, src[i:j], col(i)})
			i = j
		default:
			r, _ := utf8.DecodeRuneInString(src[i:])
			return nil, &PatternError{Column: col(i), Reason: fmt.Sprintf("unexpected character %q", r)}
		}
	}
	toks = append(toks, token{tEOF, "", utf8.RuneCountInString(src) + 1})
	return toks, nil
}

// quoted decodes the string literal starting with the quote at src[i] and
// returns it with the number of bytes it spans. Only \' and \\ are escapes.
func quoted(src string, i int) (string, int, error) {
	var b strings.Builder
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			if j+1 < len(src) && (src[j+1] == '\'' || src[j+1] == '\\') {
				b.WriteByte(src[j+1])
				j++
				continue
			}
			return "", 0, fmt.Errorf("a backslash in a string must escape ' or \\")
		case '\'':
			return b.String(), j + 1 - i, nil
		default:
			b.WriteByte(src[j])
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

// The pattern's syntax tree.

type obsNode struct {
	op         string // "AND", "OR", "FOLLOWEDBY"; "" for a leaf observation
	l, r       *obsNode
	comp       *compNode // leaf: the comparison expression in [ ]
	qualifiers []string  // WITHIN, REPEATS, START/STOP applied to this node
	col        int
}

type compNode struct {
	op   string // "AND", "OR"; "" for a comparison
	l, r *compNode
	cmp  *comparison
}

type comparison struct {
	objType string
	path    []string // property path elements; "[*]" or "[n]" for indices
	negate  bool
	op      string // = != < <= > >= IN LIKE MATCHES ISSUBSET ISSUPERSET
	values  []token
	col     int
}

// MaxNesting bounds the nesting of parentheses and brackets in a pattern.
const MaxNesting = 100

type patParser struct {
	toks  []token
	pos   int
	depth int
}

func (p *patParser) peek() token { return p.toks[p.pos] }
func (p *patParser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *patParser) errf(t token, format string, args ...any) error {
	return &PatternError{Column: t.col, Reason: fmt.Sprintf(format, args...)}
}

func describe(t token) string {
	if t.kind == tEOF {
		return "the end of the pattern"
	}
	if t.kind == tString {
		return strconv.Quote(t.text)
	}
	return "'" + t.text + "'"
}

func (p *patParser) keyword(word string) bool {
	t := p.peek()
	if t.kind == tIdent && t.text == word {
		p.pos++
		return true
	}
	return false
}

// parsePattern parses a whole pattern.
func parsePattern(src string) (*obsNode, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &patParser{toks: toks}
	n, err := p.obsFollowed()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errf(t, "unexpected %s after the pattern", describe(t))
	}
	return n, nil
}

// obsFollowed: obsOr (FOLLOWEDBY obsOr)*, the lowest precedence.
func (p *patParser) obsFollowed() (*obsNode, error) {
	return p.obsBinary("FOLLOWEDBY", p.obsOr)
}

func (p *patParser) obsOr() (*obsNode, error) { return p.obsBinary("OR", p.obsAnd) }

func (p *patParser) obsAnd() (*obsNode, error) { return p.obsBinary("AND", p.obsQualified) }

func (p *patParser) obsBinary(op string, sub func() (*obsNode, error)) (*obsNode, error) {
	l, err := sub()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if !p.keyword(op) {
			return l, nil
		}
		r, err := sub()
		if err != nil {
			return nil, err
		}
		l = &obsNode{op: op, l: l, r: r, col: t.col}
	}
}

func (p *patParser) obsQualified() (*obsNode, error) {
	n, err := p.obsPrimary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case p.keyword("WITHIN"):
			v := p.next()
			if v.kind != tInt && v.kind != tFloat {
				return nil, p.errf(v, "WITHIN needs a number of seconds, not %s", describe(v))
			}
			if !p.keyword("SECONDS") {
				return nil, p.errf(p.peek(), "expected SECONDS, found %s", describe(p.peek()))
			}
			n.qualifiers = append(n.qualifiers, "WITHIN")
		case p.keyword("REPEATS"):
			v := p.next()
			if v.kind != tInt {
				return nil, p.errf(v, "REPEATS needs an integer, not %s", describe(v))
			}
			if !p.keyword("TIMES") {
				return nil, p.errf(p.peek(), "expected TIMES, found %s", describe(p.peek()))
			}
			n.qualifiers = append(n.qualifiers, "REPEATS")
		case p.keyword("START"):
			if v := p.next(); v.kind != tTime {
				return nil, p.errf(v, "START needs a timestamp t'…', not %s", describe(v))
			}
			if !p.keyword("STOP") {
				return nil, p.errf(p.peek(), "expected STOP, found %s", describe(p.peek()))
			}
			if v := p.next(); v.kind != tTime {
				return nil, p.errf(v, "STOP needs a timestamp t'…', not %s", describe(v))
			}
			n.qualifiers = append(n.qualifiers, "START/STOP")
		default:
			_ = t
			return n, nil
		}
	}
}

func (p *patParser) enter(t token) error {
	p.depth++
	if p.depth > MaxNesting {
		return p.errf(t, "nested deeper than %d", MaxNesting)
	}
	return nil
}

func (p *patParser) obsPrimary() (*obsNode, error) {
	t := p.next()
	switch t.kind {
	case tLBrack:
		if err := p.enter(t); err != nil {
			return nil, err
		}
		c, err := p.compOr()
		if err != nil {
			return nil, err
		}
		if e := p.next(); e.kind != tRBrack {
			return nil, p.errf(e, "expected ']', found %s", describe(e))
		}
		p.depth--
		return &obsNode{comp: c, col: t.col}, nil
	case tLParen:
		if err := p.enter(t); err != nil {
			return nil, err
		}
		n, err := p.obsFollowed()
		if err != nil {
			return nil, err
		}
		if e := p.next(); e.kind != tRParen {
			return nil, p.errf(e, "expected ')', found %s", describe(e))
		}
		p.depth--
		return n, nil
	}
	return nil, p.errf(t, "expected '[' or '(' to start an observation, found %s", describe(t))
}

func (p *patParser) compOr() (*compNode, error) { return p.compBinary("OR", p.compAnd) }

func (p *patParser) compAnd() (*compNode, error) { return p.compBinary("AND", p.compPrimary) }

func (p *patParser) compBinary(op string, sub func() (*compNode, error)) (*compNode, error) {
	l, err := sub()
	if err != nil {
		return nil, err
	}
	for p.keyword(op) {
		r, err := sub()
		if err != nil {
			return nil, err
		}
		l = &compNode{op: op, l: l, r: r}
	}
	return l, nil
}

func (p *patParser) compPrimary() (*compNode, error) {
	t := p.peek()
	if t.kind == tLParen {
		p.next()
		if err := p.enter(t); err != nil {
			return nil, err
		}
		c, err := p.compOr()
		if err != nil {
			return nil, err
		}
		if e := p.next(); e.kind != tRParen {
			return nil, p.errf(e, "expected ')', found %s", describe(e))
		}
		p.depth--
		return c, nil
	}
	cmp, err := p.comparison()
	if err != nil {
		return nil, err
	}
	return &compNode{cmp: cmp}, nil
}

var keywords = map[string]bool{"AND": true, "OR": true, "NOT": true, "FOLLOWEDBY": true, "LIKE": true, "MATCHES": true,
	"ISSUBSET": true, "ISSUPERSET": true, "IN": true, "WITHIN": true, "SECONDS": true, "REPEATS": true, "TIMES": true,
	"START": true, "STOP": true}

func (p *patParser) comparison() (*comparison, error) {
	t := p.next()
	if t.kind != tIdent || keywords[t.text] {
		return nil, p.errf(t, "expected an object type, found %s", describe(t))
	}
	c := &comparison{objType: t.text, col: t.col}
	if e := p.next(); e.kind != tColon {
		return nil, p.errf(e, "expected ':' after the object type %q, found %s", t.text, describe(e))
	}
	// First property.
	switch f := p.next(); f.kind {
	case tIdent, tString:
		c.path = append(c.path, f.text)
	default:
		return nil, p.errf(f, "expected a property name, found %s", describe(f))
	}
	for {
		switch p.peek().kind {
		case tDot:
			p.next()
			f := p.next()
			if f.kind != tIdent && f.kind != tString {
				return nil, p.errf(f, "expected a property name after '.', found %s", describe(f))
			}
			c.path = append(c.path, f.text)
			continue
		case tLBrack:
			p.next()
			f := p.next()
			switch {
			case f.kind == tStar:
				c.path = append(c.path, "[*]")
			case f.kind == tInt:
				c.path = append(c.path, "["+f.text+"]")
			default:
				return nil, p.errf(f, "expected an index or '*', found %s", describe(f))
			}
			if e := p.next(); e.kind != tRBrack {
				return nil, p.errf(e, "expected ']', found %s", describe(e))
			}
			continue
		}
		break
	}
	if p.keyword("NOT") {
		c.negate = true
	}
	o := p.next()
	switch {
	case o.kind == tOp:
		c.op = o.text
	case o.kind == tIdent && (o.text == "IN" || o.text == "LIKE" || o.text == "MATCHES" || o.text == "ISSUBSET" || o.text == "ISSUPERSET"):
		c.op = o.text
	default:
		return nil, p.errf(o, "expected a comparison operator, found %s", describe(o))
	}
	if c.op == "IN" {
		if l := p.next(); l.kind != tLParen {
			return nil, p.errf(l, "IN needs a list '(…)', found %s", describe(l))
		}
		for {
			v := p.next()
			if !literal(v) {
				return nil, p.errf(v, "expected a literal, found %s", describe(v))
			}
			c.values = append(c.values, v)
			sep := p.next()
			if sep.kind == tRParen {
				break
			}
			if sep.kind != tComma {
				return nil, p.errf(sep, "expected ',' or ')', found %s", describe(sep))
			}
		}
		return c, nil
	}
	v := p.next()
	if !literal(v) && !(v.kind == tIdent && (v.text == "true" || v.text == "false")) {
		return nil, p.errf(v, "expected a literal value, found %s", describe(v))
	}
	c.values = []token{v}
	return c, nil
}

func literal(t token) bool {
	switch t.kind {
	case tString, tInt, tFloat, tTime, tHex, tBinary:
		return true
	}
	return false
}
