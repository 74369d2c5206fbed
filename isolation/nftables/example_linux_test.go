package nftables_test

import (
	"context"
	"log"
	"log/slog"
	"net/netip"
	"time"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/nftables"
)

// Isolating a network namespace (here a container's) with one management
// endpoint and the DNS-client profile, then releasing it. Needs root; not
// run as a test.
func ExampleNew() {
	e, err := nftables.New(nftables.Config{
		Logger:    slog.Default(),
		NetNSPath: "/var/run/netns/web",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close() // the rules stay in force

	dns, _ := isolation.ProfileDNSClient.Rules()
	plan := isolation.Plan{
		Management: []isolation.Endpoint{{Name: "bus", Protocol: isolation.ProtocolTCP,
			Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.10")}, Port: 4222}},
		Rules: append(dns, isolation.NeighborDiscoveryRule()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Apply(ctx, plan); err != nil {
		log.Fatal(err) // not isolated, or not verified: never report success
	}
	// ... later, to release:
	if err := e.Clear(ctx); err != nil {
		log.Fatal(err)
	}
}
