package isolation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// EventSchema is the schema of an audit Event.
const EventSchema = "cordon.isolation-event/v1"

// EventKind says what an audit Event records.
type EventKind string

// The event kinds. The bus publishes an event on
// cordon.events.<host>.<kind>.
const (
	EventIsolating EventKind = "isolating" // off → isolating: about to apply
	EventEnabled   EventKind = "enabled"   // isolating → on: rules applied and read back
	EventExtended  EventKind = "extended"  // isolate while on: deadline kept or moved later, maybe re-applied
	EventUpdated   EventKind = "updated"   // while on: management addresses or exclusions changed and were re-applied
	EventReleasing EventKind = "releasing" // → releasing: about to clear
	EventReleased  EventKind = "released"  // releasing → off: rules cleared
	EventFailed    EventKind = "failed"    // an apply, clear or resolution failed; retried
	EventRestored  EventKind = "restored"  // on start, a persisted isolation was re-applied
	EventRefused   EventKind = "refused"   // a local release was refused (wrong password, rate limited, not root)
)

// Event is one audit record: a transition of the Manager, or a refused
// local release. Field names are part of the wire contract.
type Event struct {
	Schema        string    `json:"schema"`                   // EventSchema
	ID            string    `json:"id"`                       // random, unique
	Time          time.Time `json:"time"`                     // when it happened
	Host          string    `json:"host,omitempty"`           // Config.Host
	Kind          EventKind `json:"kind"`                     // what happened
	From          State     `json:"from,omitempty"`           // state before
	To            State     `json:"to,omitempty"`             // state after
	Mode          Mode      `json:"mode,omitzero"`            // isolation mode, when isolated or isolating
	Requester     string    `json:"requester,omitempty"`      // who asked: a verified signer, "local:uid=0,pid=12", "timer", "restore"
	Reason        string    `json:"reason,omitempty"`         // why
	CommandID     string    `json:"command_id,omitempty"`     // the bus command, if any
	Deadline      time.Time `json:"deadline,omitzero"`        // when the isolation ends by itself; zero when until released or not isolated
	UntilReleased bool      `json:"until_released,omitempty"` // a manual isolation without deadline
	Exclusions    []string  `json:"exclusions,omitempty"`     // the isolation's exclusion rules the enforcer can match, in rule text form: in force once on; for isolating and failed, the ones being applied
	Management    []string  `json:"management,omitempty"`     // the management endpoints allowed, in plan text form
	Error         string    `json:"error,omitempty"`          // for failed and refused
}

// Sink receives audit events; in production the bus implements it and
// publishes them on cordon.events.<host>.<kind>. Publish must not block
// for long: the Manager calls it synchronously, in order, during its
// transitions. An error is logged and does not stop the transition.
type Sink interface {
	Publish(ctx context.Context, e Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, e Event) error

// Publish calls f.
func (f SinkFunc) Publish(ctx context.Context, e Event) error { return f(ctx, e) }

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
