package pipeline

import (
	"errors"
	"fmt"

	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/token"
)

// ErrYAMLAlias marks a YAML document that uses an anchor, an alias or a
// tag: the example programs' files do without them, and refusing them
// keeps a small file from expanding into a huge one.
var ErrYAMLAlias = errors.New("anchors, aliases and tags are not allowed")

// PlainYAML returns an error wrapping ErrYAMLAlias, naming the line and
// column, when data holds an anchor, alias or tag.
func PlainYAML(data []byte) error {
	for _, t := range lexer.Tokenize(string(data)) {
		switch t.Type {
		case token.AnchorType, token.AliasType, token.TagType:
			line, col := 0, 0
			if t.Position != nil {
				line, col = t.Position.Line, t.Position.Column
			}
			return fmt.Errorf("[%d:%d] %w", line, col, ErrYAMLAlias)
		}
	}
	return nil
}
