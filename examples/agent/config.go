package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/cordonsec/cordon/examples/internal/pipeline"
	"github.com/cordonsec/cordon/isolation"
)

// Config is the agent's configuration file (YAML, decoded strictly).
type Config struct {
	Host     HostConfig `yaml:"host"`
	Bus      BusConfig  `yaml:"bus"`
	StateDir string     `yaml:"state_dir"`
	// Feeds is the directory of indicator feeds (any supported format),
	// watched: files may be added, changed and removed.
	Feeds     string          `yaml:"feeds"`
	YARA      []string        `yaml:"yara"`
	Rules     RulesConfig     `yaml:"rules"`
	Sources   SourcesConfig   `yaml:"sources"`
	Isolation IsolationConfig `yaml:"isolation"`
	Metrics   MetricsConfig   `yaml:"metrics"`
	Log       LogConfig       `yaml:"log"`

	dir string // the config file's directory: relative paths start there
}

// HostConfig names this host.
type HostConfig struct {
	// ID is the host id on the bus (a subject token). Default: the host
	// name.
	ID string `yaml:"id"`
	// Name defaults to the host name.
	Name      string   `yaml:"name"`
	Addresses []string `yaml:"addresses"`
}

// BusConfig says how to reach the bus.
type BusConfig struct {
	// URLs of NATS servers; empty: an embedded server with its data in
	// DataDir.
	URLs    []string `yaml:"urls"`
	DataDir string   `yaml:"data_dir"`
	// Listen lets other processes (the console) join the embedded server:
	// a loopback host:port.
	Listen string `yaml:"listen"`
	// ListenAny allows a non-loopback Listen: the embedded bus then
	// serves other hosts' agents, without authentication; only behind a
	// firewall.
	ListenAny    bool   `yaml:"listen_any"`
	Creds        string `yaml:"creds"`
	NKeySeedFile string `yaml:"nkey"`
}

// RulesConfig configures the response engine.
type RulesConfig struct {
	// Mode: "local" runs the rule engine in the agent on its own
	// detections; "publish" only publishes detections, for an engine
	// elsewhere. Default: local.
	Mode   string   `yaml:"mode"`
	Dirs   []string `yaml:"dirs"`
	DryRun bool     `yaml:"dry_run"`
}

// SourcesConfig configures the event sources.
type SourcesConfig struct {
	// Files watches directories for new and changed files (Linux).
	Files *FilesSource `yaml:"files"`
	// Processes scans /proc for new processes (Linux).
	Processes *ScanSource `yaml:"processes"`
	// Connections scans /proc/net/{tcp,tcp6,udp,udp6} (Linux).
	Connections *ScanSource `yaml:"connections"`
	// Events reads cordon.event/v1 JSON lines from a file, or "-" for
	// standard input (every OS).
	Events string `yaml:"events"`
}

// FilesSource is the file watcher's configuration.
type FilesSource struct {
	Dirs []string `yaml:"dirs"`
	// InitialScan scans the files already there at start.
	InitialScan bool `yaml:"initial_scan"`
	// MaxBytes bounds the files hashed and scanned. Default: 64 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// Settle is how long a file must stay unchanged before it is read.
	// Default: 200ms.
	Settle string `yaml:"settle"`

	settle time.Duration
}

// ScanSource is a periodic scanner's configuration.
type ScanSource struct {
	// Interval between scans. Default: 5s.
	Interval string `yaml:"interval"`

	interval time.Duration
}

// IsolationConfig configures isolation.
type IsolationConfig struct {
	// Enforce puts isolation into effect with the platform's firewall
	// (nftables on Linux). False: the fake enforcer, which only records.
	Enforce bool `yaml:"enforce"`
	// TrustedKeys are the public NKeys whose commands are obeyed.
	TrustedKeys []string `yaml:"trusted_keys"`
	Automatic   ModeSpec `yaml:"automatic"`
	Manual      ModeSpec `yaml:"manual"`
	// ControlSocket is the local control socket (Linux and macOS).
	// Default: <state_dir>/control.sock. "off" disables it.
	ControlSocket string `yaml:"control_socket"`
	// PasswordHash is the argon2id hash of the local release password
	// (agent hash-password). Empty: local release is disabled.
	PasswordHash string `yaml:"password_hash"`
	// DeadMan releases an isolation when the bus has been unreachable this
	// long. Empty: never.
	DeadMan string `yaml:"dead_man"`

	automatic, manual isolation.ModeConfig
	deadMan           time.Duration
}

// ModeSpec configures one isolation mode.
type ModeSpec struct {
	Duration string    `yaml:"duration"`
	Profiles *[]string `yaml:"profiles"` // absent: the default profiles; []: none
	Rules    []string  `yaml:"rules"`    // custom exclusion rules (rule text)
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	// Listen is a loopback host:port for /metrics. Empty: no metrics.
	Listen string `yaml:"listen"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level string `yaml:"level"` // debug, info (default), warn, error
	JSON  bool   `yaml:"json"`
}

// LoadConfig reads and validates the configuration file at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, data)
}

// ParseConfig decodes data (the file path) strictly and validates it.
// Errors name the file and the line or field.
func ParseConfig(path string, data []byte) (*Config, error) {
	var c Config
	if err := pipeline.PlainYAML(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := yaml.UnmarshalWithOptions(data, &c, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("%s: %s", path, yaml.FormatError(err, false, true))
	}
	c.dir = filepath.Dir(path)
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) abs(p string) string {
	if p == "" || p == "-" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// Validate checks every field and fills the defaults.
func (c *Config) Validate() error {
	if c.Host.ID == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("host.id: not set and no host name: %v", err)
		}
		c.Host.ID = strings.ReplaceAll(h, ".", "-")
	}
	if c.Host.Name == "" {
		c.Host.Name, _ = os.Hostname()
	}
	if strings.ContainsAny(c.Host.ID, ".*> \t/\\") {
		return fmt.Errorf("host.id: %q cannot be a bus subject token", c.Host.ID)
	}
	for i, a := range c.Host.Addresses {
		if _, err := netip.ParseAddr(a); err != nil {
			return fmt.Errorf("host.addresses[%d]: %v", i, err)
		}
	}
	if c.StateDir == "" {
		return errors.New("state_dir: required (the isolation state and the embedded bus live there)")
	}
	c.StateDir = c.abs(c.StateDir)
	if len(c.Bus.URLs) == 0 {
		if c.Bus.DataDir == "" {
			c.Bus.DataDir = filepath.Join(c.StateDir, "nats")
		}
		c.Bus.DataDir = c.abs(c.Bus.DataDir)
		if c.Bus.Creds != "" || c.Bus.NKeySeedFile != "" {
			return errors.New("bus: creds and nkey are for bus.urls, not the embedded bus")
		}
	} else if c.Bus.Listen != "" || c.Bus.DataDir != "" || c.Bus.ListenAny {
		return errors.New("bus: listen and data_dir are for the embedded bus, not with urls")
	}
	if c.Bus.ListenAny && c.Bus.Listen == "" {
		return errors.New("bus.listen_any: only with bus.listen")
	}
	if c.Bus.Listen != "" && !c.Bus.ListenAny {
		if err := loopback(c.Bus.Listen); err != nil {
			return fmt.Errorf("bus.listen: %w", err)
		}
	}
	c.Bus.Creds, c.Bus.NKeySeedFile = c.abs(c.Bus.Creds), c.abs(c.Bus.NKeySeedFile)
	if c.Feeds != "" {
		c.Feeds = c.abs(c.Feeds)
		if err := isDir(c.Feeds); err != nil {
			return fmt.Errorf("feeds: %w", err)
		}
	}
	for i := range c.YARA {
		c.YARA[i] = c.abs(c.YARA[i])
		if err := isDir(c.YARA[i]); err != nil {
			return fmt.Errorf("yara[%d]: %w", i, err)
		}
	}
	switch c.Rules.Mode {
	case "":
		c.Rules.Mode = "local"
	case "local", "publish":
	default:
		return fmt.Errorf("rules.mode: %q is not local or publish", c.Rules.Mode)
	}
	if c.Rules.Mode == "publish" && (len(c.Rules.Dirs) > 0 || c.Rules.DryRun) {
		return errors.New("rules: dirs and dry_run are for mode local")
	}
	for i := range c.Rules.Dirs {
		c.Rules.Dirs[i] = c.abs(c.Rules.Dirs[i])
		if err := isDir(c.Rules.Dirs[i]); err != nil {
			return fmt.Errorf("rules.dirs[%d]: %w", i, err)
		}
	}
	if err := c.Sources.validate(c); err != nil {
		return err
	}
	if err := c.Isolation.validate(c); err != nil {
		return err
	}
	if c.Metrics.Listen != "" {
		if err := loopback(c.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	return nil
}

func (s *SourcesConfig) validate(c *Config) error {
	if f := s.Files; f != nil {
		if len(f.Dirs) == 0 {
			return errors.New("sources.files.dirs: at least one directory")
		}
		for i := range f.Dirs {
			f.Dirs[i] = c.abs(f.Dirs[i])
			if err := isDir(f.Dirs[i]); err != nil {
				return fmt.Errorf("sources.files.dirs[%d]: %w", i, err)
			}
		}
		if f.MaxBytes < 0 {
			return errors.New("sources.files.max_bytes: negative")
		}
		if f.MaxBytes == 0 {
			f.MaxBytes = 64 << 20
		}
		d, err := duration(f.Settle, 200*time.Millisecond)
		if err != nil {
			return fmt.Errorf("sources.files.settle: %w", err)
		}
		f.settle = d
	}
	for _, p := range []struct {
		name string
		s    *ScanSource
	}{{"processes", s.Processes}, {"connections", s.Connections}} {
		if p.s == nil {
			continue
		}
		d, err := duration(p.s.Interval, 5*time.Second)
		if err != nil {
			return fmt.Errorf("sources.%s.interval: %w", p.name, err)
		}
		p.s.interval = d
	}
	s.Events = c.abs(s.Events)
	return nil
}

func (ic *IsolationConfig) validate(c *Config) error {
	if len(ic.TrustedKeys) == 0 {
		// Commands are refused; local rules and the control socket work.
		ic.TrustedKeys = nil
	}
	for i, k := range ic.TrustedKeys {
		if len(k) != 56 || (k[0] != 'A' && k[0] != 'U' && k[0] != 'O') {
			return fmt.Errorf("isolation.trusted_keys[%d]: %q is not a public NKey (from console keygen)", i, k)
		}
	}
	var err error
	if ic.automatic, err = ic.Automatic.modeConfig(); err != nil {
		return fmt.Errorf("isolation.automatic: %w", err)
	}
	if ic.manual, err = ic.Manual.modeConfig(); err != nil {
		return fmt.Errorf("isolation.manual: %w", err)
	}
	if ic.ControlSocket == "" {
		ic.ControlSocket = filepath.Join(c.StateDir, "control.sock")
	} else if ic.ControlSocket != "off" {
		ic.ControlSocket = c.abs(ic.ControlSocket)
	}
	if ic.PasswordHash != "" {
		if _, err := isolation.ParsePasswordHash(ic.PasswordHash); err != nil {
			return fmt.Errorf("isolation.password_hash: %v", err)
		}
	}
	if ic.deadMan, err = duration(ic.DeadMan, 0); err != nil {
		return fmt.Errorf("isolation.dead_man: %w", err)
	}
	return nil
}

func (m ModeSpec) modeConfig() (isolation.ModeConfig, error) {
	var mc isolation.ModeConfig
	d, err := duration(m.Duration, 0)
	if err != nil {
		return mc, fmt.Errorf("duration: %w", err)
	}
	mc.Duration = d
	if m.Profiles != nil {
		mc.Exclusions.Profiles = []isolation.Profile{}
		for _, p := range *m.Profiles {
			mc.Exclusions.Profiles = append(mc.Exclusions.Profiles, isolation.Profile(p))
		}
	}
	for i, r := range m.Rules {
		rule, err := isolation.ParseRule(r)
		if err != nil {
			return mc, fmt.Errorf("rules[%d]: %v", i, err)
		}
		mc.Exclusions.Rules = append(mc.Exclusions.Rules, rule)
	}
	if err := mc.Exclusions.Validate(); err != nil {
		return mc, err
	}
	return mc, nil
}

func duration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration", s)
	}
	return d, nil
}

func isDir(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", p)
	}
	return nil
}

// loopback checks that addr is a host:port on a loopback address.
func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address", addr)
	}
	return nil
}
