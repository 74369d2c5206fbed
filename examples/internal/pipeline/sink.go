package pipeline

import (
	"context"
	"encoding/json"
	"time"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/isolation"
)

// IsolationEventSource is the Source of the audit events EventSink
// publishes.
const IsolationEventSource = "isolation"

// EventSink is an isolation.Sink that publishes each Manager event as the
// audit event cordon.events.<host>.isolation.<kind>, whose Data is the
// isolation.Event (cordon.isolation-event/v1). Next, when set, gets every
// event too (metrics, a test's recorder).
type EventSink struct {
	Bus  *bus.Bus
	Next func(isolation.Event)
}

// Publish implements isolation.Sink.
func (s EventSink) Publish(ctx context.Context, e isolation.Event) error {
	if s.Next != nil {
		s.Next(e)
	}
	if s.Bus == nil {
		return nil
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = s.Bus.PublishEvent(ctx, bus.Event{
		ID: e.ID, Time: e.Time, Host: e.Host, Kind: "isolation." + string(e.Kind),
		Source: IsolationEventSource, Data: data,
	})
	return err
}

// DecodeIsolationEvent returns the isolation.Event carried by an audit
// event published by EventSink; ok is false for other events.
func DecodeIsolationEvent(e bus.Event) (ev isolation.Event, ok bool, err error) {
	if e.Source != IsolationEventSource {
		return ev, false, nil
	}
	if err := json.Unmarshal(e.Data, &ev); err != nil {
		return ev, true, err
	}
	return ev, true, nil
}

// CommandResultSource is the Source of the audit events that answer a
// command (CommandResultEvent).
const CommandResultSource = "command"

// CommandResultKind is the Kind of a command's answer:
// cordon.events.<host>.command.result.
const CommandResultKind = "command.result"

// CommandResultEvent returns the audit event that answers a command with
// its isolation.Result: the console waits for it, so that a command the
// host refused, or carried out without a state change (releasing a host
// that is not isolated), is answered too. Its id derives from the
// command's, so a redelivered command's answer is stored once.
func CommandResultEvent(host string, res isolation.Result, now time.Time) (bus.Event, error) {
	data, err := json.Marshal(res)
	if err != nil {
		return bus.Event{}, err
	}
	return bus.Event{ID: "result-" + res.CommandID, Time: now, Host: host, Kind: CommandResultKind,
		Source: CommandResultSource, Data: data}, nil
}

// DecodeCommandResult returns the isolation.Result carried by an audit
// event made by CommandResultEvent; ok is false for other events.
func DecodeCommandResult(e bus.Event) (res isolation.Result, ok bool, err error) {
	if e.Source != CommandResultSource || e.Kind != CommandResultKind {
		return res, false, nil
	}
	if err := json.Unmarshal(e.Data, &res); err != nil {
		return res, true, err
	}
	return res, true, nil
}
