package nftables

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/cordonsec/cordon/isolation"
)

// Config configures an Enforcer. The zero value is valid: it enforces in
// the network namespace of the process, logging nowhere.
type Config struct {
	// Logger receives what the enforcer did (connections ended, conntrack
	// entries deleted) at debug and info level. Nil discards the logs.
	Logger *slog.Logger

	// NetNSPath, when set, is the path of the network namespace to
	// enforce in, e.g. "/var/run/netns/web" or "/proc/1234/ns/net". Every
	// netlink socket of the enforcer (nftables, sock_diag, conntrack, the
	// address list) is opened in it. Empty: the namespace of the process
	// (/proc/self/ns/net) when New is called.
	NetNSPath string

	// NetNSFile, when set, is an open handle of the network namespace to
	// enforce in (for example from netns.Get, wrapped with os.NewFile).
	// New duplicates it; the caller keeps ownership of NetNSFile. At most
	// one of NetNSPath and NetNSFile may be set.
	NetNSFile *os.File
}

// Validate reports a Config that cannot be used; the error wraps
// isolation.ErrInvalidConfig.
func (c Config) Validate() error {
	if c.NetNSPath != "" && c.NetNSFile != nil {
		return fmt.Errorf("nftables: %w: set NetNSPath or NetNSFile, not both", isolation.ErrInvalidConfig)
	}
	if c.NetNSFile != nil && c.NetNSFile.Fd() == ^uintptr(0) {
		return fmt.Errorf("nftables: %w: NetNSFile is closed", isolation.ErrInvalidConfig)
	}
	return nil
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}
