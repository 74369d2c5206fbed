package ioc_test

import (
	"fmt"
	"time"

	"github.com/cordonsec/cordon/ioc"
)

func Example() {
	set, err := ioc.Compile([]ioc.Indicator{
		{ID: "c2", Kind: ioc.KindDomain, Value: "Evil.Example.", Source: "feed-a", Severity: ioc.SeverityHigh, Tags: []string{"c2"}},
		{ID: "net", Kind: ioc.KindCIDR, Value: "198.18.0.0/15", Source: "feed-b", Severity: ioc.SeverityMedium},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ev, err := ioc.DecodeEvent([]byte(`{"schema":"cordon.event/v1","id":"e-1","time":"2026-11-25T10:00:00Z",
		"host":{"id":"h-42","os":"linux"},"kind":"dns",
		"dns":{"query":"www.EVIL.example","answers":["198.18.0.66"]}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 11, 25, 10, 0, 1, 0, time.UTC)
	matches := set.Match(&ev, now)
	for _, m := range matches {
		fmt.Printf("%s %s=%s (%s %s)\n", m.Indicator.ID, m.Field, m.Observable, m.Indicator.Kind, m.Indicator.Value)
	}
	det, err := ioc.NewDetection(ev, ioc.EngineAtomic, "", ioc.SeverityUnknown, matches, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(det.Severity, len(det.Indicators))
	// Output:
	// c2 dns.query=www.evil.example (domain evil.example)
	// net dns.answers[0]=198.18.0.66 (cidr 198.18.0.0/15)
	// high 2
}

func ExampleBuilder() {
	b := ioc.NewBuilder(2)
	fmt.Println(b.Add(ioc.Indicator{ID: "ok", Kind: ioc.KindIPv4, Value: "192.0.2.1"}))
	fmt.Println(b.Add(ioc.Indicator{ID: "bad", Kind: ioc.KindIPv4, Value: "10.0.0.300"}))
	_, err := b.Build()
	fmt.Println(err != nil)
	// Output:
	// <nil>
	// ioc: indicator #1 "bad" (ipv4 "10.0.0.300"): is not an IP address: IPv4 field has value >255
	// true
}
