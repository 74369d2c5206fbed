package isolation

import (
	"fmt"
	"time"
)

// Mode is how an isolation was started; each mode has its own default
// duration and its own exclusion list.
type Mode uint8

// The modes. The zero value is "no mode" (the host is not isolated).
const (
	// ModeAutomatic: a response rule isolated the host on a detection. Its
	// exclusions come from the policy.
	ModeAutomatic Mode = iota + 1
	// ModeManual: an operator isolated the host. Its exclusions come from
	// the host's own settings; it may last until released.
	ModeManual
)

// String returns "automatic", "manual" or "" for the zero value.
func (m Mode) String() string {
	switch m {
	case ModeAutomatic:
		return "automatic"
	case ModeManual:
		return "manual"
	case 0:
		return ""
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// MarshalText implements encoding.TextMarshaler.
func (m Mode) MarshalText() ([]byte, error) {
	if m > ModeManual {
		return nil, fmt.Errorf("isolation: %w: mode %d", ErrInvalidConfig, uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText accepts "automatic", "manual" and "".
func (m *Mode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "automatic":
		*m = ModeAutomatic
	case "manual":
		*m = ModeManual
	case "":
		*m = 0
	default:
		return fmt.Errorf("isolation: %w: mode %q (want automatic or manual)", ErrInvalidConfig, string(b))
	}
	return nil
}

// State is the Manager's state.
type State string

// The states. Transitions: off → isolating → on → releasing → off; any of
// isolating and releasing (and a refresh while on) can end in failed,
// from which the Manager retries towards its target.
const (
	StateOff       State = "off"
	StateIsolating State = "isolating"
	StateOn        State = "on"
	StateReleasing State = "releasing"
	StateFailed    State = "failed"
)

func (s State) valid() bool {
	switch s {
	case StateOff, StateIsolating, StateOn, StateReleasing, StateFailed:
		return true
	}
	return false
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("8h", "90m"). The zero value means "the mode's default".
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration string; negative durations are
// rejected.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("isolation: %w: duration %q: %v", ErrInvalidConfig, string(b), err)
	}
	if v < 0 {
		return fmt.Errorf("isolation: %w: negative duration %q", ErrInvalidConfig, string(b))
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes "in", "out" or "both".
func (d Direction) MarshalText() ([]byte, error) {
	if d < DirectionIn || d > DirectionBoth {
		return nil, ruleErr("direction", d.String(), "want in, out or both")
	}
	return []byte(d.String()), nil
}

// UnmarshalText parses "in", "out" or "both".
func (d *Direction) UnmarshalText(b []byte) error {
	v, err := ParseDirection(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText writes the protocol name.
func (p Protocol) MarshalText() ([]byte, error) {
	if p > ProtocolICMPv6 {
		return nil, ruleErr("protocol", p.String(), "unknown protocol")
	}
	return []byte(p.String()), nil
}

// UnmarshalText parses a protocol name.
func (p *Protocol) UnmarshalText(b []byte) error {
	v, err := ParseProtocol(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
