package openioc

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxDepth is the deepest element nesting a document may have.
const MaxDepth = 128

// elem is an XML element with the line it starts on.
type elem struct {
	name  string // local name
	attrs map[string]string
	kids  []*elem
	text  strings.Builder
	line  int
}

func (e *elem) attr(name string) string { return strings.TrimSpace(e.attrs[strings.ToLower(name)]) }

// child returns the first child named name (case-insensitively).
func (e *elem) child(name string) *elem {
	for _, k := range e.kids {
		if strings.EqualFold(k.name, name) {
			return k
		}
	}
	return nil
}

// parseXML reads the document into elements.
func parseXML(data []byte) (*elem, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	dec.CharsetReader = func(charset string, r io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "us-ascii", "ascii":
			return r, nil
		}
		return nil, fmt.Errorf("encoding %q is not supported (use UTF-8)", charset)
	}
	var root *elem
	var stack []*elem
	for {
		line, _ := dec.InputPos()
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, &Error{Line: se.Line, Reason: "malformed XML: " + se.Msg, Err: ErrSyntax}
			}
			return nil, &Error{Line: line, Reason: "malformed XML: " + err.Error(), Err: ErrSyntax}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= MaxDepth {
				return nil, &Error{Line: line, Reason: fmt.Sprintf("elements nested deeper than %d", MaxDepth), Err: ErrSyntax}
			}
			l, _ := dec.InputPos()
			e := &elem{name: t.Name.Local, attrs: map[string]string{}, line: l}
			for _, a := range t.Attr {
				e.attrs[strings.ToLower(a.Name.Local)] = a.Value
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, &Error{Line: l, Reason: "a second root element", Err: ErrSyntax}
				}
				root = e
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, e)
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		}
	}
	if root == nil {
		return nil, &Error{Reason: "no root element", Err: ErrSyntax}
	}
	return root, nil
}
