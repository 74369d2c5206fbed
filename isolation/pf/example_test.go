package pf_test

import (
	"fmt"
	"net/netip"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/pf"
)

func ExampleRuleset() {
	r, _ := isolation.ParseRule("out udp rport=53 name=dns")
	p := isolation.Plan{
		Management: []isolation.Endpoint{{Name: "bus", Protocol: isolation.ProtocolTCP, Port: 4222,
			Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}},
		Rules: []isolation.Rule{r},
	}
	fmt.Print(pf.Ruleset(p))
	// Output:
	// # cordon network isolation; generated from the plan, do not edit
	// # loopback
	// pass quick on lo0 all no state
	// # mgmt tcp addr=192.0.2.1 port=4222 name=bus
	// pass out quick inet proto tcp from any to 192.0.2.1 port 4222 keep state
	// # rule out udp rport=53 name=dns
	// pass out quick inet proto udp from any to any port 53 keep state
	// pass out quick inet6 proto udp from any to any port 53 keep state
	// # block
	// block drop quick inet all
	// block drop quick inet6 all
}
