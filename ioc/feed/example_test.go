package feed_test

import (
	"fmt"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed"
)

func Example() {
	l, err := feed.NewLoader(feed.Config{})
	if err != nil {
		panic(err)
	}
	// A CSV feed and a STIX indicator that is more than one equality.
	if err := l.Load("partner.csv", []byte("type,value,severity\ndomain,evil.example,high\n")); err != nil {
		panic(err)
	}
	bundle := `{"type": "bundle", "objects": [{"type": "indicator", "id": "indicator--1", "pattern_type": "stix",
		"pattern": "[network-traffic:dst_ref.value ISSUBSET '198.51.100.0/24' AND network-traffic:dst_port = 4444]"}]}`
	if err := l.Load("intel.json", []byte(bundle)); err != nil {
		panic(err)
	}
	// A bad update is rejected whole, naming the line; the feed in force stays.
	err = l.Load("partner.csv", []byte("type,value\ndomain,ok.example\nipv4,300.1.2.3\n"))
	fmt.Println(err)

	ev := ioc.Event{Schema: ioc.EventSchema, ID: "e-1", Time: time.Now(), Host: ioc.Host{ID: "h-1"}, Kind: ioc.EventDNS,
		DNS: &ioc.DNSEvent{Query: "cdn.evil.example"}}
	for _, d := range l.Match(&ev) {
		fmt.Println(d.Engine, d.Severity, d.Indicators[0].Value, d.Indicators[0].Source)
	}
	ev = ioc.Event{Schema: ioc.EventSchema, ID: "e-2", Time: time.Now(), Host: ioc.Host{ID: "h-1"}, Kind: ioc.EventNetwork,
		Network: &ioc.NetworkEvent{RemoteAddress: "198.51.100.9", RemotePort: 4444}}
	for _, d := range l.Match(&ev) {
		fmt.Println(d.Engine, d.Rule)
	}
	// Output:
	// feed: partner.csv: csvfeed: partner.csv:3:6: ipv4 "300.1.2.3": is not an IP address: IPv4 field has value >255
	// atomic high evil.example partner.csv
	// stix indicator--1
}
