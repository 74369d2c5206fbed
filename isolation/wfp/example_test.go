package wfp

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/cordonsec/cordon/isolation"
)

// An Enforcer over the in-memory engine the tests use; on Windows,
// New(Config{}) opens the real engine.
func ExampleEnforcer() {
	eng := newFakeEngine()
	e, err := New(Config{Open: eng.open, Conns: &fakeConns{}, NoAgentPermit: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	r, _ := isolation.ParseRule("out udp rport=53 name=dns")
	p := isolation.Plan{
		Management: []isolation.Endpoint{{Name: "bus", Protocol: isolation.ProtocolTCP, Port: 4222,
			Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}},
		Rules: []isolation.Rule{r},
	}
	ctx := context.Background()
	if err := e.Apply(ctx, p); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(eng.snapshot(DefaultSublayer)), "filters")
	o, _ := e.Observe(ctx)
	fmt.Print(o.Plan)
	// Output:
	// 11 filters
	// cordon-plan v1
	// loopback allow
	// mgmt tcp addr=192.0.2.1 port=4222 name=bus
	// rule out udp rport=53 name=dns
}
