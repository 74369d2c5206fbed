package response

import (
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/vm"
	"github.com/goccy/go-yaml/ast"
)

// Template is text with {{ expression }} parts, compiled at load against
// Env: "IOC {{ indicator.value }} on {{ host.name }}". A part's value is
// printed with severities and kinds by name. It is immutable and safe for
// concurrent use.
type Template struct {
	src   string
	parts []tmplPart
}

type tmplPart struct {
	text string
	prog *vm.Program // nil for text
}

// String returns the template's source.
func (t *Template) String() string {
	if t == nil {
		return ""
	}
	return t.src
}

// Render evaluates the template in env.
func (t *Template) Render(env *Env) (string, error) {
	if t == nil {
		return "", nil
	}
	if len(t.parts) == 1 && t.parts[0].prog == nil {
		return t.parts[0].text, nil
	}
	m := vmPool.Get().(*vm.VM)
	defer vmPool.Put(m)
	var b strings.Builder
	for _, p := range t.parts {
		if p.prog == nil {
			b.WriteString(p.text)
			continue
		}
		v, err := runAny(m, p.prog, env)
		if err != nil {
			return "", err
		}
		b.WriteString(formatValue(v))
	}
	return b.String(), nil
}

// compileTemplate compiles src, the value of n, recording located errors.
func (l *loader) compileTemplate(n ast.Node, field, src string) (*Template, bool) {
	t := &Template{src: src}
	rest := src
	off := 0 // rune offset of rest in src
	for rest != "" {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.parts = append(t.parts, tmplPart{text: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{text: rest[:i]})
		}
		off += utf8.RuneCountInString(rest[:i])
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			l.exprErrPlain(n, field, off, "{{ is not closed by }}")
			return nil, false
		}
		code := rest[i+2 : i+2+j]
		prog, ok := l.compileExpr(n, field, code, off+2)
		if !ok {
			return nil, false
		}
		t.parts = append(t.parts, tmplPart{prog: prog})
		off += 2 + utf8.RuneCountInString(code) + 2
		rest = rest[i+2+j+2:]
	}
	if len(t.parts) == 0 {
		t.parts = []tmplPart{{text: ""}}
	}
	return t, true
}

// exprErrPlain records an ErrExpression at rune offset off of n's value.
func (l *loader) exprErrPlain(n ast.Node, field string, off int, msg string) {
	line, col := nodePos(n)
	if line >= 1 && line <= len(l.lines) {
		if r := []rune(l.lines[line-1]); col >= 1 && col-1 < len(r) && (r[col-1] == '"' || r[col-1] == '\'') {
			col++
		}
	}
	l.errLineCol(line, col+off, field, wrapExpr(msg))
}
