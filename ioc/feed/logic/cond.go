package logic

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// Op is the comparison a Cond makes between an event field's value and
// the condition's values.
type Op uint8

// The comparisons. Each is true when some value of some of the Cond's
// fields satisfies it (before Negate is applied).
const (
	OpEq       Op = iota + 1 // equal to Values[0]; an address field and a CIDR value: within it
	OpContains               // contains Values[0]
	OpPrefix                 // starts with Values[0]
	OpSuffix                 // ends with Values[0]
	OpRegex                  // matches the regular expression Values[0] (RE2 syntax)
	OpLT                     // less than Values[0]: numerically on numeric fields, else by bytes
	OpLE                     // less than or equal
	OpGT                     // greater than
	OpGE                     // greater than or equal
	OpIn                     // equal to one of Values
	OpLike                   // matches the SQL LIKE pattern Values[0] (% any run, _ one character)
	OpSubset                 // an address within the CIDR prefix Values[0]
	OpSuperset               // a prefix that contains Values[0] (for a single address: equal to it)

	opEnd
)

var opNames = [opEnd]string{"", "=", "contains", "starts-with", "ends-with", "matches", "<", "<=", ">", ">=", "in", "like", "issubset", "issuperset"}

// String returns a short name of the operator.
func (op Op) String() string {
	if op > 0 && op < opEnd {
		return opNames[op]
	}
	return "op(" + strconv.Itoa(int(op)) + ")"
}

// Cond is a leaf condition: Op between the values of Fields and Values.
// NewCond checks and compiles it.
type Cond struct {
	// Fields are the event fields tested; the condition holds if it holds
	// for one of them. Required. They should share one form (all
	// addresses, all domain names, …): Values are normalized as the first.
	Fields []Field
	// Op is the comparison. Required.
	Op Op
	// Values are the literals: one for every Op but OpIn, which takes one
	// or more. Required.
	Values []string
	// Negate inverts the outcome for an event that has the field.
	Negate bool
	// CaseSensitive makes text comparisons exact; by default they ignore
	// case (Unicode simple folding). Digests, addresses, domain names,
	// registry keys and Windows paths are compared in their normalized
	// (lower-case) form either way, by every operator.
	CaseSensitive bool

	exact bool // CaseSensitive, and the field's form keeps case

	re       *regexp.Regexp
	nums     []int64
	prefixes []netip.Prefix
	folded   []string
}

// NewCond checks c and returns it as a leaf. It returns an error wrapping
// ErrInvalidCond that says what is wrong: no field, an unknown operator,
// the wrong number of values, a regular expression that does not compile, a
// number or prefix that does not parse.
func NewCond(c Cond) (*Node, error) {
	bad := func(format string, args ...any) (*Node, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidCond, fmt.Sprintf(format, args...))
	}
	if len(c.Fields) == 0 {
		return bad("no field")
	}
	for _, f := range c.Fields {
		if !f.Valid() {
			return bad("unknown field %d", f)
		}
	}
	if c.Op == 0 || c.Op >= opEnd {
		return bad("unknown operator %d", c.Op)
	}
	if len(c.Values) == 0 {
		return bad("%s needs a value", c.Op)
	}
	if c.Op != OpIn && len(c.Values) != 1 {
		return bad("%s takes one value, not %d", c.Op, len(c.Values))
	}
	c.Fields = append([]Field(nil), c.Fields...)
	f0 := c.Fields[0]
	vals := make([]string, len(c.Values))
	for i, v := range c.Values {
		switch c.Op {
		case OpEq, OpIn, OpLT, OpLE, OpGT, OpGE:
			vals[i] = f0.Normalize(v)
		case OpPrefix, OpContains, OpLike:
			vals[i] = f0.expandHive(strings.TrimSpace(v))
		default:
			vals[i] = v
		}
	}
	c.Values = vals
	c.exact = c.CaseSensitive
	for _, v := range vals {
		c.exact = c.exact && !caseless(f0, c.Op, v)
	}
	numeric := true
	for _, f := range c.Fields {
		numeric = numeric && f.Numeric()
	}
	switch c.Op {
	case OpEq, OpIn:
		if f0.Address() {
			for _, v := range vals {
				if strings.Contains(v, "/") {
					p, err := parseCIDR(v)
					if err != nil {
						return bad("%q is not a CIDR prefix", v)
					}
					c.prefixes = append(c.prefixes, p)
				}
			}
			if len(c.prefixes) > 0 && len(c.prefixes) != len(vals) {
				return bad("mixes addresses and CIDR prefixes")
			}
		}
		if numeric {
			for _, v := range vals {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return bad("%q is not an integer", v)
				}
				c.nums = append(c.nums, n)
			}
		}
	case OpLT, OpLE, OpGT, OpGE:
		if numeric {
			n, err := strconv.ParseInt(vals[0], 10, 64)
			if err != nil {
				return bad("%q is not an integer", c.Values[0])
			}
			c.nums = []int64{n}
		}
	case OpRegex:
		src := vals[0]
		if !c.exact {
			src = "(?i)" + src
		}
		re, err := regexp.Compile(src)
		if err != nil {
			return bad("regular expression %q: %v", vals[0], err)
		}
		c.re = re
	case OpLike:
		var b strings.Builder
		b.WriteString("(?s)^")
		if !c.exact {
			b.WriteString("(?i)")
		}
		for _, r := range vals[0] {
			switch r {
			case '%':
				b.WriteString(".*")
			case '_':
				b.WriteString(".")
			default:
				b.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		b.WriteString("$")
		c.re = regexp.MustCompile(b.String())
	case OpSubset, OpSuperset:
		v := vals[0]
		p, err := parseCIDR(v)
		if err != nil {
			a, err2 := netip.ParseAddr(v)
			if err2 != nil {
				return bad("%q is not a CIDR prefix or address", v)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		c.prefixes = []netip.Prefix{p}
	}
	if !c.exact {
		c.folded = make([]string, len(vals))
		for i, v := range vals {
			c.folded[i] = strings.ToLower(v)
		}
	} else {
		c.folded = vals
	}
	return &Node{op: nodeLeaf, cond: &c}, nil
}

// test reports whether the normalized value v satisfies the comparison,
// before negation.
func (c *Cond) test(f Field, v string) bool {
	switch c.Op {
	case OpEq, OpIn:
		if len(c.prefixes) > 0 {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return false
			}
			for _, p := range c.prefixes {
				if p.Contains(a) {
					return true
				}
			}
			return false
		}
		if len(c.nums) > 0 && f.Numeric() {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return false
			}
			for _, x := range c.nums {
				if n == x {
					return true
				}
			}
			return false
		}
		for _, x := range c.Values {
			if c.exact && v == x || !c.exact && strings.EqualFold(v, x) {
				return true
			}
		}
		return false
	case OpContains:
		return strings.Contains(c.fold(v), c.folded[0])
	case OpPrefix:
		return strings.HasPrefix(c.fold(v), c.folded[0])
	case OpSuffix:
		return strings.HasSuffix(c.fold(v), c.folded[0])
	case OpRegex, OpLike:
		return c.re.MatchString(v)
	case OpLT, OpLE, OpGT, OpGE:
		var cmp int
		if len(c.nums) > 0 && f.Numeric() {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return false
			}
			cmp = compare(n, c.nums[0])
		} else {
			cmp = strings.Compare(c.fold(v), c.folded[0])
		}
		switch c.Op {
		case OpLT:
			return cmp < 0
		case OpLE:
			return cmp <= 0
		case OpGT:
			return cmp > 0
		}
		return cmp >= 0
	case OpSubset:
		a, err := netip.ParseAddr(v)
		return err == nil && c.prefixes[0].Contains(a)
	case OpSuperset:
		a, err := netip.ParseAddr(v)
		p := c.prefixes[0]
		return err == nil && p.Bits() == a.BitLen() && p.Addr() == a
	}
	return false
}

func (c *Cond) fold(v string) string {
	if c.exact {
		return v
	}
	return strings.ToLower(v)
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// eval evaluates the leaf on o. On a positive match it reports the field
// and the value that matched.
func (c *Cond) eval(o *observed) (ok bool, hitField Field, hitValue string) {
	for _, f := range c.Fields {
		if !o.present(f) {
			continue
		}
		if c.Negate {
			for _, v := range o.values(f) {
				if c.test(f, v) {
					return false, 0, ""
				}
			}
			ok, hitField, hitValue = true, f, o.values(f)[0]
			continue
		}
		for _, v := range o.values(f) {
			if c.test(f, v) {
				return true, f, v
			}
		}
	}
	return ok, hitField, hitValue
}

// caseless reports whether f's values are normalized to lower case, so
// that a literal v compared with them must ignore case whatever the
// condition says: digests, addresses, names of the DNS, registry keys,
// Windows paths (v with a backslash, an escaped one in a regular
// expression, or a drive letter).
func caseless(f Field, op Op, v string) bool {
	switch fieldInfo[f].form {
	case formHash, formAddr, formDomain, formHostOrAddr, formRegistry, formKeyPath, formLower, formUpper:
		return true
	case formPath, formDir:
		sep := `\`
		if op == OpRegex {
			sep = `\\`
		}
		v = strings.TrimPrefix(v, "^")
		return strings.Contains(v, sep) || len(v) >= 2 && v[1] == ':'
	}
	return f == ServiceName
}

// PCREOnly reports whether the regular expression re is rejected by Go's
// RE2 engine only for PCRE (or Python) syntax RE2 lacks: look-around,
// back-references, possessive or over-long counted repeats. Such an
// expression is valid where the feed was written, so a parser reports its
// indicator as unsupported rather than malformed; the reason names the
// construct. Other errors (an unbalanced parenthesis) are the
// expression's own, and PCREOnly returns false for them.
func PCREOnly(re string) (reason string, ok bool) {
	_, err := syntax.Parse(re, syntax.Perl)
	var se *syntax.Error
	if !errors.As(err, &se) {
		return "", false
	}
	switch se.Code {
	case syntax.ErrInvalidPerlOp, syntax.ErrInvalidNamedCapture, syntax.ErrInvalidEscape, syntax.ErrInvalidRepeatSize, syntax.ErrInvalidRepeatOp:
		return fmt.Sprintf("%s %q", se.Code, se.Expr), true
	}
	return "", false
}

// parseCIDR parses a CIDR prefix, masked, with an IPv4-mapped one
// (::ffff:198.51.100.0/120) as the IPv4 prefix it stands for, since event
// addresses are compared unmapped (as package ioc does).
func parseCIDR(v string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return p, err
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}
