package isolation_test

import (
	"context"
	"fmt"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

func ExampleParseRule() {
	r, err := isolation.ParseRule("out tcp remote=2001:db8::/32,192.0.2.0/24 rport=8443,443 name=proxy")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r)

	_, err = isolation.ParseRule("out icmp rport=53")
	fmt.Println(err)
	// Output:
	// out tcp remote=192.0.2.0/24,2001:db8::/32 rport=443,8443 name=proxy
	// isolation: invalid rule at column 10, field rport: ports need protocol tcp or udp, not icmp
}

func ExampleProfile_Rules() {
	rules, _ := isolation.ProfileDHCPClient.Rules()
	for _, r := range rules {
		fmt.Println(r)
	}
	// Output:
	// both udp remote=0.0.0.0/0 lport=68 rport=67 name=dhcp-client:v4
	// both udp remote=::/0 lport=546 rport=547 name=dhcp-client:v6
}

func ExamplePlan_String() {
	web, _ := isolation.ParseRule("out tcp remote=198.18.1.0/24 rport=443 name=web")
	p := isolation.Plan{
		Management: []isolation.Endpoint{isolationtest.PlanA().Management[0]},
		Rules:      []isolation.Rule{web, isolation.NeighborDiscoveryRule()},
	}
	fmt.Print(p)
	// Output:
	// cordon-plan v1
	// loopback allow
	// mgmt tcp addr=198.18.0.10,2001:db8::10 port=4222 name=bus.test:4222
	// rule both icmpv6 icmp=130,131,132,133,134,135,136,143 name=icmpv6-nd
	// rule out tcp remote=198.18.1.0/24 rport=443 name=web
}

func ExampleManager() {
	ctx := context.Background()
	enforcer := isolationtest.NewFake() // an agent uses its platform's adapter
	m, err := isolation.New(isolation.Config{
		Host:       "web-01",
		Enforcer:   enforcer,
		Management: []isolation.ManagementEndpoint{{Address: "192.0.2.10:4222"}},
		Automatic: isolation.ModeConfig{Exclusions: isolation.Exclusions{
			Profiles: []isolation.Profile{isolation.ProfileDNSClient}}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	if err := m.Restore(ctx); err != nil { // once, at start
		fmt.Println(err)
		return
	}

	st, err := m.Isolate(ctx, isolation.Request{Mode: isolation.ModeAutomatic, Reason: "ransomware detection", Requester: "rule:ransom"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(st.State, st.Mode, st.Deadline.Sub(st.Since))
	for _, x := range st.Exclusions {
		fmt.Println("exclusion:", x)
	}
	fmt.Println("management:", st.Management)

	st, _ = m.Release(ctx, isolation.ReleaseRequest{Reason: "false positive", Requester: "alice"})
	fmt.Println(st.State)
	// Output:
	// on automatic 8h0m0s
	// exclusion: out udp rport=53 name=dns-client
	// exclusion: out tcp rport=53 name=dns-client
	// management: [mgmt tcp addr=192.0.2.10 port=4222 name=192.0.2.10:4222]
	// off
}

func ExampleManager_HandleCommand() {
	ctx := context.Background()
	m, _ := isolation.New(isolation.Config{Enforcer: isolationtest.NewFake()})
	defer m.Close()
	_ = m.Restore(ctx)

	r := m.HandleCommand(ctx, isolation.Command{ID: "cmd-1", Action: isolation.ActionIsolate,
		Mode: isolation.ModeManual, UntilReleased: true, Requester: "console:alice"})
	fmt.Println(r.OK, r.Status.State, r.Status.UntilReleased)
	r = m.HandleCommand(ctx, isolation.Command{ID: "cmd-1", Action: isolation.ActionIsolate, Mode: isolation.ModeManual})
	fmt.Println(r.OK, r.Duplicate)
	// Output:
	// true on true
	// true true
}

func ExampleHashPassword() {
	// The console stores the hash in the agent's configuration
	// (ControlConfig.PasswordHash); the password itself is never stored.
	hash, err := isolation.HashPassword("correct horse battery staple", isolation.Argon2Params{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ok, _ := isolation.VerifyPassword(hash, "correct horse battery staple")
	bad, _ := isolation.VerifyPassword(hash, "wrong")
	fmt.Println(hash[:31], ok, bad)
	// Output:
	// $argon2id$v=19$m=65536,t=3,p=4$ true false
}
