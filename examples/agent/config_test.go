package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSampleConfig(t *testing.T) {
	c, err := LoadConfig("agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Isolation.Enforce || c.Rules.Mode != "local" || c.Host.ID != "demo-host" || c.Metrics.Listen != "127.0.0.1:9470" {
		t.Errorf("sample config: %+v", c)
	}
	if got := c.Isolation.automatic.Exclusions.Profiles; len(got) != 2 {
		t.Errorf("automatic profiles %v", got)
	}
	if len(c.Isolation.manual.Exclusions.Rules) != 1 || c.Isolation.manual.Exclusions.Profiles != nil {
		t.Errorf("manual exclusions %+v", c.Isolation.manual.Exclusions)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	base := "host: {id: h-1}\nstate_dir: " + dir + "\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", base + "isolation: {enforced: true}\n", `[3:13] unknown field "enforced"`},
		{"no state dir", "host: {id: h-1}\n", "state_dir: required"},
		{"bad host id", "host: {id: a.b}\nstate_dir: " + dir + "\n", `host.id: "a.b" cannot be a bus subject token`},
		{"duplicate key", base + "host: {id: h-1, addresses: [nope]}\n", "mapping key \"host\" already defined"},
		{"rules mode", base + "rules: {mode: remote}\n", `rules.mode: "remote" is not local or publish`},
		{"publish with dirs", base + "rules: {mode: publish, dirs: [" + dir + "]}\n", "rules: dirs and dry_run are for mode local"},
		{"missing feed dir", base + "feeds: " + filepath.Join(dir, "nope") + "\n", "feeds: stat"},
		{"metrics not loopback", base + "metrics: {listen: 0.0.0.0:9470}\n", `metrics.listen: "0.0.0.0:9470" is not a loopback address`},
		{"listen not loopback", base + "bus: {listen: 192.0.2.1:4222}\n", "bus.listen:"},
		{"listen with urls", base + "bus: {urls: [\"nats://192.0.2.1:4222\"], listen: 127.0.0.1:4222}\n", "listen and data_dir are for the embedded bus"},
		{"bad address", "host: {id: h-1, addresses: [nope]}\nstate_dir: " + dir + "\n", "host.addresses[0]:"},
		{"creds without urls", base + "bus: {creds: x.creds}\n", "creds and nkey are for bus.urls"},
		{"bad key", base + "isolation: {trusted_keys: [ABC]}\n", `isolation.trusted_keys[0]: "ABC" is not a public NKey`},
		{"bad exclusion", base + "isolation: {manual: {rules: [\"sideways tcp\"]}}\n", "isolation.manual: rules[0]:"},
		{"bad profile", base + "isolation: {automatic: {profiles: [telnet]}}\n", "isolation.automatic:"},
		{"bad duration", base + "isolation: {automatic: {duration: forever}}\n", `isolation.automatic: duration: "forever" is not a positive duration`},
		{"bad hash", base + "isolation: {password_hash: secret}\n", "isolation.password_hash:"},
		{"bad interval", base + "sources: {processes: {interval: 0s}}\n", "sources.processes.interval:"},
		{"files without dirs", base + "sources: {files: {}}\n", "sources.files.dirs: at least one directory"},
		{"alias", base + "log: &l {level: info}\nmetrics: *l\n", "[3:6] anchors, aliases and tags are not allowed"},
		{"log level", base + "log: {level: loud}\n", `log.level: "loud"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("cfg.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "cfg.yaml: ") {
				t.Fatalf("error %v, want it to name cfg.yaml and contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigRelativePaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "feeds"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(p, []byte("host: {id: h-1}\nstate_dir: state\nfeeds: feeds\nsources: {events: ev.jsonl}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != filepath.Join(dir, "state") || c.Feeds != filepath.Join(dir, "feeds") || c.Sources.Events != filepath.Join(dir, "ev.jsonl") ||
		c.Bus.DataDir != filepath.Join(dir, "state", "nats") || c.Isolation.ControlSocket != filepath.Join(dir, "state", "control.sock") {
		t.Errorf("paths: %+v", c)
	}
}

func FuzzParseConfig(f *testing.F) {
	b, err := os.ReadFile("agent.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("host: {id: h}\nstate_dir: /tmp\nisolation: {manual: {rules: [\"in tcp lport=22\"]}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("fuzz.yaml", data)
		if err == nil && (c.StateDir == "" || c.Host.ID == "") {
			t.Fatal("accepted without state_dir or host id")
		}
	})
}
