package isolation_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cordonsec/cordon/isolation"
)

// TestEventWireFields pins the audit event's JSON field names, part of the
// wire contract.
func TestEventWireFields(t *testing.T) {
	ev := isolation.Event{
		Schema: isolation.EventSchema, ID: "e1", Time: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Host: "h-42",
		Kind: isolation.EventEnabled, From: isolation.StateIsolating, To: isolation.StateOn, Mode: isolation.ModeAutomatic,
		Requester: "rule:x", Reason: "detection", CommandID: "c1", Deadline: time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC),
		Exclusions: []string{"out udp rport=53 name=dns-client"}, Management: []string{"mgmt tcp addr=192.0.2.1 port=4222"},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schema":"cordon.isolation-event/v1","id":"e1","time":"2026-11-25T10:00:00Z","host":"h-42","kind":"enabled",` +
		`"from":"isolating","to":"on","mode":"automatic","requester":"rule:x","reason":"detection","command_id":"c1",` +
		`"deadline":"2026-11-25T18:00:00Z","exclusions":["out udp rport=53 name=dns-client"],"management":["mgmt tcp addr=192.0.2.1 port=4222"]}`
	if string(b) != want {
		t.Fatalf("event JSON\n%s\nwant\n%s", b, want)
	}
	var back isolation.Event
	if err := json.Unmarshal(b, &back); err != nil || back.Mode != ev.Mode || !back.Deadline.Equal(ev.Deadline) {
		t.Fatalf("decode: %+v %v", back, err)
	}
	// Zero mode and deadline are left out.
	b, _ = json.Marshal(isolation.Event{Schema: isolation.EventSchema, ID: "e2", Time: ev.Time, Kind: isolation.EventRefused, Error: "wrong password"})
	if want := `{"schema":"cordon.isolation-event/v1","id":"e2","time":"2026-11-25T10:00:00Z","kind":"refused","error":"wrong password"}`; string(b) != want {
		t.Fatalf("minimal event JSON %s", b)
	}
}

func TestCommandJSON(t *testing.T) {
	var c isolation.Command
	in := `{"id":"c1","action":"isolate","mode":"manual","duration":"90m","reason":"r","requester":"k"}`
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if c.Mode != isolation.ModeManual || time.Duration(c.Duration) != 90*time.Minute || c.Action != isolation.ActionIsolate {
		t.Fatalf("decoded %+v", c)
	}
	for _, bad := range []string{`{"mode":"sometimes"}`, `{"duration":"-1h"}`, `{"duration":"soon"}`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
