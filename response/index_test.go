package response_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/response"
)

var (
	genKinds   = []string{"md5", "sha256", "domain", "ipv4", "url"}
	genValues  = map[string]string{"md5": "00112233445566778899aabbccddeeff", "sha256": strings.Repeat("ab", 32), "domain": "evil.example", "ipv4": "198.18.0.1", "url": "http://evil.example/x"}
	genSources = []string{"feed-a", "feed-b", "feed-c"}
	genTags    = []string{"ransomware", "c2", "apt", "miner"}
	genEngines = []string{"atomic", "yara", "openioc", "stix"}
	genSevs    = []string{"low", "medium", "high", "critical"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func genAtom(r *rand.Rand, depth int) string {
	switch n := r.IntN(17); {
	case n == 0:
		return fmt.Sprintf("indicator.kind == %q", pick(r, genKinds))
	case n == 1:
		return fmt.Sprintf("%q == indicator.kind", pick(r, genKinds))
	case n == 2:
		return fmt.Sprintf("indicator.kind in [%q, %q]", pick(r, genKinds), pick(r, genKinds))
	case n == 3:
		return fmt.Sprintf("indicator.source == %q", pick(r, genSources))
	case n == 4:
		return fmt.Sprintf("detection.engine == %q", pick(r, genEngines))
	case n == 5:
		return fmt.Sprintf("detection.engine in [%q]", pick(r, genEngines))
	case n == 6:
		return fmt.Sprintf("%q in indicator.tags", pick(r, genTags))
	case n == 7:
		return fmt.Sprintf("hasTag(indicator.tags, %q)", pick(r, genTags))
	case n == 8:
		return fmt.Sprintf("detection.severity >= %q", pick(r, genSevs))
	case n == 9:
		return fmt.Sprintf("not (%q in indicator.tags)", pick(r, genTags))
	case n == 10 && depth < 2:
		return "(" + genAtom(r, depth+1) + " || " + genAtom(r, depth+1) + ")"
	case n == 11:
		return fmt.Sprintf("any(detection.indicators, .kind == %q)", pick(r, genKinds))
	case n == 12:
		return fmt.Sprintf("match.index == %d", r.IntN(3)-1)
	case n == 13:
		return `detection.indicators[2].value != ""` // fails with fewer than 3 indicators
	case n == 14:
		return fmt.Sprintf("indicator.source != %q", pick(r, genSources))
	case n == 15:
		return pick(r, []string{
			fmt.Sprintf("detection.severity > %q", pick(r, genSevs)),
			fmt.Sprintf("%q <= detection.severity", pick(r, genSevs)),
			fmt.Sprintf("%q < indicator.severity", pick(r, genSevs)),
			fmt.Sprintf("severityAtLeast(detection.severity, %q)", pick(r, genSevs)),
			fmt.Sprintf("indicator.severity >= %q", pick(r, genSevs)),
			fmt.Sprintf("detection.severity <= %q", pick(r, genSevs)),
		})
	default:
		return fmt.Sprintf("indicator.score > %d", r.IntN(100))
	}
}

func genRules(r *rand.Rand, n int) string {
	var b strings.Builder
	for i := range n {
		atoms := make([]string, 1+r.IntN(4))
		for j := range atoms {
			atoms[j] = genAtom(r, 0)
		}
		fmt.Fprintf(&b, "- name: r%d\n  when: %q\n  actions: [ {log: {message: x}} ]\n", i, strings.Join(atoms, " && "))
		if r.IntN(10) == 0 {
			b.WriteString("  stop: true\n")
		}
		if r.IntN(10) == 0 {
			b.WriteString("  dry_run: true\n")
		}
	}
	return b.String()
}

func genDetection(r *rand.Rand, i int) ioc.Detection {
	n := r.IntN(5)
	if r.IntN(50) == 0 {
		n = 70 // past the 64-indicator mask
	}
	var inds []ind
	for j := range n {
		k := pick(r, genKinds)
		var tags []string
		for _, t := range genTags {
			if r.IntN(3) == 0 {
				tags = append(tags, t)
			}
		}
		if r.IntN(10) == 0 && len(tags) > 0 {
			tags = append(tags, tags[0]) // a repeated tag
		}
		inds = append(inds, ind{id: fmt.Sprint(j), kind: k, value: genValues[k], source: pick(r, genSources),
			sev: ioc.Severity(r.IntN(5)), tags: tags})
	}
	d := detection(fmt.Sprintf("d%d", i), "h1", ioc.Engine(pick(r, genEngines)), inds...)
	for j := range d.Indicators {
		d.Indicators[j].Score = r.IntN(100)
	}
	return d
}

// The index never changes the outcome: on random rules and detections,
// the indexed engine fires exactly the rules, for exactly the indicators,
// that the engine evaluating every rule fires.
func TestIndexEquivalence(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	// CORDON_LONG_TESTS=1 runs ten times as many rounds.
	rounds, rules, dets := 8, 120, 250
	if os.Getenv("CORDON_LONG_TESTS") != "" {
		rounds *= 10
	}
	if testing.Short() {
		rounds = 3
	}
	fired := 0
	var compileTime time.Duration
	for round := range rounds {
		src := genRules(r, rules)
		start := time.Now()
		f, err := response.Compile(response.LoadConfig{}, "gen.yaml", []byte(src))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		compileTime += time.Since(start)
		rs, err := response.NewRuleSet(f)
		if err != nil {
			t.Fatal(err)
		}
		for i := range dets {
			d := genDetection(r, i)
			want := names(rs.EvaluateAll(&d, t0))
			got := names(rs.Evaluate(&d, t0))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("round %d detection %d: indexed differs (-all +indexed):\n%s", round, i, diff)
			}
			fired += len(want)
		}
	}
	t.Logf("%d firings; compiling took %v", fired, compileTime)
	if fired == 0 {
		t.Fatal("no rule ever fired: the test proves nothing")
	}
}

func names(fs []response.Firing) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = fmt.Sprintf("%s@%d", f.Rule.Name, f.Indicator)
	}
	return out
}
