package yara

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/VirusTotal/gyp/ast"
)

// pattern is one concrete form of a string (for example its wide form, or
// one xor key) that the scanner looks for.
type pattern struct {
	str      int
	lit      []byte // literal form; nil when re is set
	nocase   bool
	re       *reNode
	wide     bool // regex matched in wide mode / fullword checked in wide mode
	fullword bool
	bol      bool // regex anchored at the start of data
	// fwd and bwd are set when the atom is not in the fixed-width prefix:
	// a match runs fwd forward from the atom and bwd (reversed) backward.
	fwd, bwd *reNode
	// dual marks a split regex that is both ascii and wide: like YARA, an
	// atom hit is verified in ascii mode and only if that fails forward in
	// wide mode.
	dual bool
	// greedy: of several matches at one offset the longest is kept (a
	// greedy regex, as YARA); otherwise the first form's shortest.
	greedy  bool
	atoms   [][]byte
	atomOff int      // offset of the atom from the start of a match
	first   *byteSet // no-atom patterns: bytes a match can start with
}

// atomQualityThreshold is YARA's warning threshold for atom quality.
const atomQualityThreshold = 38

const defaultBase64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func widen(b []byte) []byte {
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, c, 0)
	}
	return out
}

// base64Variants returns the parts of the base64 encodings of s (after 0, 1
// and 2 leading bytes) that do not depend on the surrounding data.
func base64Variants(s []byte, alphabet string) [][]byte {
	var out [][]byte
	for pad := 0; pad < 3; pad++ {
		in := append(make([]byte, pad), s...)
		enc := make([]byte, 0, (len(in)+2)/3*4)
		for i := 0; i < len(in); i += 3 {
			var v uint32
			n := len(in) - i
			if n > 3 {
				n = 3
			}
			for j := 0; j < 3; j++ {
				v <<= 8
				if j < n {
					v |= uint32(in[i+j])
				}
			}
			chars := n + 1
			for j := 0; j < chars; j++ {
				enc = append(enc, alphabet[(v>>(18-6*uint(j)))&63])
			}
		}
		// Drop leading characters that depend on the padding bytes.
		lead := []int{0, 2, 3}[pad]
		// Drop the trailing character that depends on following data.
		trail := 0
		if len(in)%3 != 0 {
			trail = 1
		}
		if len(enc)-trail <= lead {
			continue
		}
		out = append(out, enc[lead:len(enc)-trail])
	}
	return out
}

func (c *compiler) compileString(s ast.String) error {
	cs := &cstring{id: "$" + s.GetIdentifier(), rule: len(c.out.rules), line: s.GetLineNo()}
	if cs.line <= 0 {
		cs.line = c.cur.line
	}
	si := len(c.out.strs)
	strErr := func(kind error, format string, a ...any) error {
		line, col := c.find(cs.line, cs.id)
		return c.errAtLine(kind, c.cur.name, line, col, fmt.Sprintf("string %s: ", cs.id)+fmt.Sprintf(format, a...))
	}
	var pats []*pattern
	var chainPats []*pattern // one per chained part, see cstring.chain
	var quality = 1 << 30
	var warnSlow bool
	switch t := s.(type) {
	case *ast.TextString:
		cs.private = t.Private
		val, err := unescapeText(t.Value)
		if err != nil {
			return strErr(ErrInvalidString, "%v", err)
		}
		if len(val) == 0 {
			return strErr(ErrInvalidString, "empty string")
		}
		if t.Xor && (t.Nocase || t.Base64 || t.Base64Wide) {
			return strErr(ErrInvalidString, "xor cannot be combined with nocase or base64")
		}
		if (t.Base64 || t.Base64Wide) && (t.Nocase || t.Fullword) {
			return strErr(ErrInvalidString, "base64 cannot be combined with nocase or fullword")
		}
		if t.Xor && (t.XorMin < 0 || t.XorMax > 255 || t.XorMin > t.XorMax) {
			return strErr(ErrInvalidString, "invalid xor range %d-%d", t.XorMin, t.XorMax)
		}
		if (t.Base64 || t.Base64Wide) && t.Base64Alphabet != "" {
			if err := c.checkAlphabets(cs.line, s.GetIdentifier()); err != nil {
				return strErr(ErrInvalidString, "%v", err)
			}
		}
		ascii := t.ASCII || !t.Wide
		var forms [][]byte
		var formWide []bool
		if ascii {
			forms = append(forms, val)
			formWide = append(formWide, false)
		}
		if t.Wide {
			forms = append(forms, widen(val))
			formWide = append(formWide, true)
		}
		switch {
		case t.Base64 || t.Base64Wide:
			alpha := t.Base64Alphabet
			if alpha == "" {
				alpha = defaultBase64Alphabet
			}
			if len(alpha) != 64 {
				return strErr(ErrInvalidString, "base64 alphabet must be 64 bytes")
			}
			for _, f := range forms {
				for _, enc := range base64Variants(f, alpha) {
					if t.Base64 {
						pats = append(pats, &pattern{lit: enc})
					}
					if t.Base64Wide {
						pats = append(pats, &pattern{lit: widen(enc), wide: true})
					}
				}
			}
		case t.Xor:
			for i, f := range forms {
				for k := int(t.XorMin); k <= int(t.XorMax); k++ {
					x := make([]byte, len(f))
					for j, b := range f {
						x[j] = b ^ byte(k)
					}
					pats = append(pats, &pattern{lit: x, wide: formWide[i], fullword: t.Fullword})
				}
			}
		default:
			for i, f := range forms {
				pats = append(pats, &pattern{lit: f, nocase: t.Nocase, wide: formWide[i], fullword: t.Fullword})
			}
		}
		for _, p := range pats {
			q := literalAtom(p)
			if q < quality {
				quality = q
			}
		}
		// YARA rates the atom of the plain string before widening it or
		// applying xor, and warns when that or any final atom is poor.
		if !t.Base64 && !t.Base64Wide {
			plain := &pattern{lit: val, nocase: t.Nocase}
			if q := literalAtom(plain); q < quality {
				quality = q
			}
		}
		if len(pats) == 0 {
			return strErr(ErrInvalidString, "string too short for base64")
		}
	case *ast.RegexpString:
		cs.private = t.Private
		re, err := parseRegex(t.Regexp.Value,
			t.Nocase || t.Regexp.Modifiers&ast.RegexpCaseInsensitive != 0,
			t.Regexp.Modifiers&ast.RegexpDotAll != 0)
		if err != nil {
			return strErr(ErrInvalidString, "invalid regular expression: %v", err)
		}
		warnSlow = hasUnboundedAny(re)
		// Like YARA, each alternative of a top-level alternation is its own
		// pattern with its own atoms.
		alts := []*reNode{re}
		if re.kind == reAlt {
			alts = re.subs
		}
		greedy := hasGreedy(re)
		dual := t.Wide && t.ASCII
		for _, alt := range alts {
			if t.ASCII || !t.Wide {
				pats = append(pats, &pattern{re: alt, fullword: t.Fullword, greedy: greedy, dual: dual})
			}
			if t.Wide {
				pats = append(pats, &pattern{re: alt, wide: true, fullword: t.Fullword, greedy: greedy, dual: dual})
			}
		}
		quality = reQuality(re)
		for _, p := range pats {
			reAtom(p)
		}
	case *ast.HexString:
		cs.private = t.Private
		re, err := hexNode(t.Tokens, 0)
		if err != nil {
			return strErr(ErrInvalidString, "invalid hex string: %v", err)
		}
		quality = reQuality(re)
		parts, gaps := splitChain(t.Tokens)
		if len(parts) > 1 {
			for i, part := range parts {
				node, err := hexNode(part, 0)
				if err != nil {
					return strErr(ErrInvalidString, "invalid hex string: %v", err)
				}
				p := &pattern{re: node}
				reAtom(p)
				// YARA rates each chained part's atoms on their own.
				if i == 0 {
					quality = reQuality(node)
				} else {
					quality = min(quality, reQuality(node))
				}
				link := chainLink{str: si + 1 + i}
				if i > 0 {
					link.min, link.max = gaps[i-1][0], gaps[i-1][1]
				}
				cs.chain = append(cs.chain, link)
				chainPats = append(chainPats, p)
			}
			break
		}
		pats = append(pats, &pattern{re: re})
		reAtom(pats[0])
	default:
		return strErr(ErrSyntax, "unsupported string type %T", s)
	}
	if quality < atomQualityThreshold {
		c.out.warnings = append(c.out.warnings, Warning{Line: cs.line, Rule: c.cur.name,
			Msg: fmt.Sprintf("string %s may slow down scanning", cs.id)})
	}
	if warnSlow {
		c.out.warnings = append(c.out.warnings, Warning{Line: cs.line, Rule: c.cur.name,
			Msg: fmt.Sprintf("%s contains .*, .+ or .{x,}; consider .{,N}, .{1,N} or .{x,N} with a reasonable N", cs.id)})
	}
	for _, p := range pats {
		p.str = si
		cs.patterns = append(cs.patterns, len(c.out.pats))
		c.out.pats = append(c.out.pats, p)
	}
	c.out.strs = append(c.out.strs, cs)
	c.cur.strings = append(c.cur.strings, si)
	if s.GetIdentifier() != "" {
		c.curStrs[s.GetIdentifier()] = si
	}
	if len(cs.chain) > 0 {
		c.out.chained = append(c.out.chained, si)
		for i, p := range chainPats {
			part := &cstring{id: fmt.Sprintf("%s(part %d)", cs.id, i+1), rule: cs.rule, private: true, line: cs.line}
			p.str = len(c.out.strs)
			part.patterns = []int{len(c.out.pats)}
			c.out.pats = append(c.out.pats, p)
			c.out.strs = append(c.out.strs, part)
		}
	}
	return nil
}

// splitChain splits top-level hex tokens at jumps longer than
// chainThreshold (or unbounded), returning the parts and the jumps between
// them as [min, max] (max -1: unbounded).
func splitChain(tokens ast.HexTokens) ([]ast.HexTokens, [][2]int) {
	var parts []ast.HexTokens
	var gaps [][2]int
	start := 0
	for i, tok := range tokens {
		j, ok := tok.(*ast.HexJump)
		if !ok || i == 0 || i == len(tokens)-1 {
			continue
		}
		if j.End != 0 && j.End <= chainThreshold {
			continue
		}
		max := j.End
		if max == 0 {
			max = -1
		}
		parts = append(parts, tokens[start:i])
		gaps = append(gaps, [2]int{j.Start, max})
		start = i + 1
	}
	if len(gaps) == 0 {
		return nil, nil
	}
	parts = append(parts, tokens[start:])
	for _, p := range parts {
		if len(p) == 0 {
			return nil, nil // consecutive jumps: leave unsplit
		}
		if _, ok := p[0].(*ast.HexJump); ok {
			return nil, nil
		}
		if _, ok := p[len(p)-1].(*ast.HexJump); ok {
			return nil, nil
		}
	}
	return parts, gaps
}

var base64ModRe = regexp.MustCompile(`\bbase64(wide)?\b\s*(\(\s*"((?:[^"\\]|\\.)*)"\s*\))?`)

// checkAlphabets rejects a string that gives base64 and base64wide
// different alphabets (gyp keeps only one of them), reading the string's
// declaration from the source.
func (c *compiler) checkAlphabets(line int, id string) error {
	if line < 1 || line > len(c.lineOff) {
		return nil
	}
	text := c.pp.text[c.lineOff[line-1]:]
	if i := strings.Index(text, "$"+id); i >= 0 {
		text = text[i:]
	}
	if j := strings.IndexByte(text, '\n'); j >= 0 {
		text = text[:j]
	}
	var alphabets []string
	for _, m := range base64ModRe.FindAllStringSubmatch(text, -1) {
		alphabets = append(alphabets, m[3])
	}
	for _, a := range alphabets[min(1, len(alphabets)):] {
		if a != alphabets[0] {
			return fmt.Errorf("base64 and base64wide must use the same alphabet")
		}
	}
	return nil
}

// hexNode converts gyp hex tokens to a node tree.
func hexNode(tokens ast.HexTokens, depth int) (*reNode, error) {
	if depth > 100 {
		return nil, fmt.Errorf("alternatives nested too deeply")
	}
	var items []*reNode
	for i, tok := range tokens {
		switch t := tok.(type) {
		case *ast.HexBytes:
			for j, b := range t.Bytes {
				var s byteSet
				m := byte(0xFF)
				if j < len(t.Masks) {
					m = t.Masks[j]
				}
				for v := 0; v < 256; v++ {
					if byte(v)&m == b&m {
						s.add(byte(v))
					}
				}
				if j < len(t.Nots) && t.Nots[j] {
					return nil, fmt.Errorf("~ (not) in hex strings is YARA 4.3 syntax, not 4.2.3")
				}
				items = append(items, &reNode{kind: reClass, set: s})
			}
		case *ast.HexJump:
			if i == 0 || i == len(tokens)-1 {
				return nil, fmt.Errorf("a hex string cannot start or end with a jump")
			}
			max := t.End
			if max == 0 {
				max = -1
			}
			if t.Start < 0 || (max >= 0 && max < t.Start) {
				return nil, fmt.Errorf("invalid jump [%d-%d]", t.Start, t.End)
			}
			var any byteSet
			any.invert()
			items = append(items, &reNode{kind: reRepeat, subs: []*reNode{{kind: reClass, set: any}},
				min: t.Start, max: max, greedy: false})
		case *ast.HexOr:
			var alts []*reNode
			for _, a := range t.Alternatives {
				var toks ast.HexTokens
				switch at := a.(type) {
				case ast.HexTokens:
					toks = at
				default:
					toks = ast.HexTokens{at}
				}
				n, err := hexNode(toks, depth+1)
				if err != nil {
					return nil, err
				}
				alts = append(alts, n)
			}
			items = append(items, &reNode{kind: reAlt, subs: alts})
		case ast.HexTokens:
			n, err := hexNode(t, depth+1)
			if err != nil {
				return nil, err
			}
			items = append(items, n)
		default:
			return nil, fmt.Errorf("unexpected hex token %T", tok)
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("empty hex string")
	}
	if len(items) == 1 {
		return items[0], nil
	}
	return &reNode{kind: reConcat, subs: items}, nil
}
