package response_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cordonsec/cordon/ioc"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update)", err, t.Name())
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

func TestExplainGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil, string(data))
	cases := map[string]ioc.Detection{
		"ransomware": detection("det-ransom", "h1", "atomic",
			ind{id: "i1", kind: "domain", value: "evil.example", source: "feed-a", sev: ioc.SeverityMedium},
			ind{id: "i2", kind: "sha256", value: "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899", source: "feed-b", sev: ioc.SeverityCritical, tags: []string{"ransomware"}}),
		"medium": detection("det-medium", "h2", "stix",
			ind{id: "i1", kind: "sha256", value: "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899", sev: ioc.SeverityMedium, tags: []string{"ransomware", "c2"}}),
		"yara": detection("det-yara", "h3", "yara"),
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			x := f.eng.Explain(&d)
			golden(t, "explain-"+name+".txt", []byte(x.Text()))
			js, err := json.MarshalIndent(x, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "explain-"+name+".json", append(js, '\n'))
			// Explain agrees with evaluation.
			var fires []string
			for _, r := range x.Rules {
				if r.Fires {
					fires = append(fires, r.Rule)
				}
			}
			var evaluated []string
			for _, fr := range f.eng.Evaluate(&d) {
				evaluated = append(evaluated, fr.Rule.Name)
			}
			if diff := cmp.Diff(evaluated, fires); diff != "" {
				t.Errorf("explain and evaluate disagree (-evaluate +explain):\n%s", diff)
			}
		})
	}
}
