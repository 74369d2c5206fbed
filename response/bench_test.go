package response_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/response"
)

// benchRules makes n rules as a rule author would write them: most name
// an indicator kind, a tag or a source with ==/in (indexable), with a
// severity, score or CIDR condition besides; one in ten constrains
// nothing the index can use.
func benchRules(r *rand.Rand, n int) string {
	var b strings.Builder
	for i := range n {
		var when string
		switch i % 10 {
		case 0:
			when = fmt.Sprintf(`detection.severity >= "critical" && indicator.score > %d && inCIDR(event.network.remote_address, "198.18.%d.0/24")`, 90+r.IntN(10), r.IntN(256))
		case 1, 2, 3:
			when = fmt.Sprintf(`indicator.kind == %q && indicator.source == "feed-%d" && detection.severity >= "high"`, pick(r, genKinds), r.IntN(20))
		case 4, 5, 6:
			when = fmt.Sprintf(`"tag-%d" in indicator.tags && detection.engine in ["atomic", "yara"]`, r.IntN(50))
		default:
			when = fmt.Sprintf(`indicator.kind in [%q, %q] && indicator.score >= %d && "tag-%d" in indicator.tags`, pick(r, genKinds), pick(r, genKinds), r.IntN(100), r.IntN(50))
		}
		fmt.Fprintf(&b, "- name: r%d\n  when: %q\n  actions: [ {log: {message: \"{{ indicator.value }}\", level: debug}} ]\n", i, when)
	}
	return b.String()
}

func benchDetections(r *rand.Rand, n int) []ioc.Detection {
	out := make([]ioc.Detection, n)
	for i := range out {
		var inds []ind
		for j := range 1 + r.IntN(3) {
			k := pick(r, genKinds)
			inds = append(inds, ind{id: fmt.Sprint(j), kind: k, value: genValues[k], source: fmt.Sprintf("feed-%d", r.IntN(20)),
				sev: ioc.Severity(1 + r.IntN(4)), tags: []string{fmt.Sprintf("tag-%d", r.IntN(50)), "malware"}})
		}
		out[i] = detection(fmt.Sprintf("d%d", i), "h1", "atomic", inds...)
		out[i].Event = ioc.Event{Schema: ioc.EventSchema, ID: "e", Time: t0, Kind: ioc.EventNetwork, Host: ioc.Host{ID: "h1"},
			Network: &ioc.NetworkEvent{Protocol: "tcp", RemoteAddress: fmt.Sprintf("198.18.%d.%d", r.IntN(256), r.IntN(256)), RemotePort: 443}}
		for j := range out[i].Indicators {
			out[i].Indicators[j].Score = r.IntN(100)
		}
	}
	return out
}

// BenchmarkHandle measures detections per second through Engine.Handle
// (evaluation, decision, actions of the rules that fire) with 10, 100 and
// 1,000 rules, indexed and not. Run on one core:
//
//	go test ./response/ -run '^$' -bench Handle -cpu 1 -benchtime 2s
func BenchmarkHandle(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, noIndex := range []bool{false, true} {
			name := fmt.Sprintf("rules=%d/index=%v", n, !noIndex)
			b.Run(name, func(b *testing.B) {
				r := rand.New(rand.NewPCG(uint64(n), 1))
				eng, err := response.New(response.Config{NoIndex: noIndex, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				if err := eng.LoadBytes("bench.yaml", []byte(benchRules(r, n))); err != nil {
					b.Fatal(err)
				}
				dets := benchDetections(r, 1024)
				ctx := context.Background()
				fired := 0
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuTime()
				for i := 0; b.Loop(); i++ {
					dec, err := eng.Handle(ctx, &dets[i%len(dets)])
					if err != nil {
						b.Fatal(err)
					}
					fired += len(dec.Rules)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "detections/s")
				if cpu := cpuTime() - cpu0; cpu > 0 {
					b.ReportMetric(float64(b.N)/cpu.Seconds(), "detections/cpu-s")
				}
				b.ReportMetric(float64(fired)/float64(b.N), "fired/op")
			})
		}
	}
}

// BenchmarkCompile measures loading a file of 100 rules.
func BenchmarkCompile(b *testing.B) {
	src := []byte(benchRules(rand.New(rand.NewPCG(1, 1)), 100))
	for b.Loop() {
		if _, err := response.Compile(response.LoadConfig{}, "bench.yaml", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluate measures rule evaluation alone (RuleSet.Evaluate:
// which rules fire, no decision, no action), indexed and not.
func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, noIndex := range []bool{false, true} {
			b.Run(fmt.Sprintf("rules=%d/index=%v", n, !noIndex), func(b *testing.B) {
				r := rand.New(rand.NewPCG(uint64(n), 1))
				f, err := response.Compile(response.LoadConfig{}, "bench.yaml", []byte(benchRules(r, n)))
				if err != nil {
					b.Fatal(err)
				}
				rs, err := response.NewRuleSet(f)
				if err != nil {
					b.Fatal(err)
				}
				dets := benchDetections(r, 1024)
				eval := rs.Evaluate
				if noIndex {
					eval = rs.EvaluateAll
				}
				b.ReportAllocs()
				cpu0 := cpuTime()
				for i := 0; b.Loop(); i++ {
					eval(&dets[i%len(dets)], t0)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "detections/s")
				if cpu := cpuTime() - cpu0; cpu > 0 {
					b.ReportMetric(float64(b.N)/cpu.Seconds(), "detections/cpu-s")
				}
			})
		}
	}
}
