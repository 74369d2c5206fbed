package bus_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/cordonsec/cordon/bus"
)

// A console signs an isolation order; the agent of host h-42 verifies it
// with the console's public key, and refuses it when it is replayed.
func ExampleSignCommand() {
	seed := []byte("SAAAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPSAIJCEMSCKJWJX4") // the console's (test) seed
	console, err := nkeys.FromSeed(seed)
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	sc, err := bus.SignCommand(console, bus.Command{
		ID: "cmd-1", Host: "h-42", Action: bus.ActionIsolate,
		IssuedAt: now, Expires: now.Add(10 * time.Minute),
		Args: []byte(`{"duration":"8h","reason":"ransomware on web-01"}`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	pub, _ := console.PublicKey()
	v, _ := bus.NewVerifier(bus.VerifierConfig{
		TrustedKeys: []string{pub}, Host: "h-42",
		Clock: func() time.Time { return now.Add(time.Minute) },
	})
	wire, _ := json.Marshal(sc)
	c, err := v.VerifyCommand(wire)
	fmt.Println(c.Action, c.Host, string(c.Args), err)
	_, err = v.VerifyCommand(wire)
	fmt.Println(errors.Is(err, bus.ErrCommandReplayed))
	// Output:
	// isolate h-42 {"duration":"8h","reason":"ransomware on web-01"} <nil>
	// true
}
