package bus

import (
	"fmt"
	"strings"
	"unicode"
)

// Subject prefixes. A subject is the prefix followed by tokens.
const (
	PrefixDetections  = "cordon.detections."
	PrefixCommands    = "cordon.commands."
	PrefixEvents      = "cordon.events."
	PrefixDeadLetters = "cordon.deadletter."
)

// maxTokenLen bounds one subject token (host id, kind part).
const maxTokenLen = 128

// checkToken reports whether s can be one NATS subject token.
func checkToken(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalidSubject, what)
	}
	if len(s) > maxTokenLen {
		return fmt.Errorf("%w: %s is %d bytes, above %d", ErrInvalidSubject, what, len(s), maxTokenLen)
	}
	for i, r := range s {
		if r == '.' || r == '*' || r == '>' || r == '/' || r == '\\' || r == unicode.ReplacementChar || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("%w: %s %q: character %q at byte %d", ErrInvalidSubject, what, s, r, i)
		}
	}
	return nil
}

// DetectionSubject is "cordon.detections.<host>". It fails with
// ErrInvalidSubject when host is not a single subject token.
func DetectionSubject(host string) (string, error) {
	if err := checkToken("host", host); err != nil {
		return "", err
	}
	return PrefixDetections + host, nil
}

// CommandSubject is "cordon.commands.<host>". It fails with
// ErrInvalidSubject when host is not a single subject token.
func CommandSubject(host string) (string, error) {
	if err := checkToken("host", host); err != nil {
		return "", err
	}
	return PrefixCommands + host, nil
}

// EventSubject is "cordon.events.<host>.<kind>". The kind may hold dots
// ("isolation.enabled"), each part a valid token; it fails with
// ErrInvalidSubject otherwise.
func EventSubject(host, kind string) (string, error) {
	if err := checkToken("host", host); err != nil {
		return "", err
	}
	if err := checkKind(kind); err != nil {
		return "", err
	}
	return PrefixEvents + host + "." + kind, nil
}

func checkKind(kind string) error {
	if kind == "" {
		return fmt.Errorf("%w: kind is empty", ErrInvalidSubject)
	}
	for i, part := range strings.Split(kind, ".") {
		if err := checkToken(fmt.Sprintf("kind part %d", i), part); err != nil {
			return err
		}
	}
	return nil
}

// DeadLetterSubject is "cordon.deadletter.<stream>".
func DeadLetterSubject(stream string) string { return PrefixDeadLetters + stream }

// checkFilter checks that filter is a valid subject (wildcards allowed)
// under prefix.
func checkFilter(prefix, filter string) error {
	if !strings.HasPrefix(filter, prefix) {
		return fmt.Errorf("%w: filter %q is not under %q", ErrInvalidSubject, filter, prefix+">")
	}
	toks := strings.Split(filter[len(prefix):], ".")
	for i, t := range toks {
		switch {
		case t == "*":
		case t == ">" && i == len(toks)-1:
		default:
			if err := checkToken(fmt.Sprintf("filter %q token %d", filter, i), t); err != nil {
				return err
			}
		}
	}
	return nil
}
