package nftables

import (
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// openNamespace returns a handle of the namespace cfg names, owned by the
// caller.
func openNamespace(cfg Config) (*os.File, error) {
	switch {
	case cfg.NetNSFile != nil:
		fd, err := unix.FcntlInt(cfg.NetNSFile.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: dup NetNSFile: %w", ErrNamespace, err)
		}
		f := os.NewFile(uintptr(fd), cfg.NetNSFile.Name())
		return f, checkNamespace(f)
	default:
		path := cfg.NetNSPath
		if path == "" {
			path = "/proc/self/ns/net"
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNamespace, err)
		}
		return f, checkNamespace(f)
	}
}

// checkNamespace verifies that f is a network namespace.
func checkNamespace(f *os.File) error {
	t, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("%w: %s: %w", ErrNamespace, f.Name(), err)
	}
	if t != unix.CLONE_NEWNET {
		_ = f.Close()
		return fmt.Errorf("%w: %s is not a network namespace", ErrNamespace, f.Name())
	}
	return nil
}

// inNamespace runs fn on an OS thread switched into the namespace ns and
// waits for it. Sockets fn creates belong to ns and may be used from any
// thread afterwards. The thread goes back to its original namespace; if
// that fails, the thread is left locked so that the runtime discards it.
func inNamespace(ns *os.File, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("%w: current namespace: %w", ErrNamespace, err)
			return
		}
		defer orig.Close()
		if err := netns.Set(netns.NsHandle(int(ns.Fd()))); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("%w: enter %s: %w", ErrNamespace, ns.Name(), err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Keep the thread locked: it dies with this goroutine.
			errc <- fmt.Errorf("%w: restore namespace: %w", ErrNamespace, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// openDiag opens a NETLINK_SOCK_DIAG socket in ns.
func openDiag(ns *os.File) (*diagSocket, error) {
	var d *diagSocket
	err := inNamespace(ns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
		if err != nil {
			return fmt.Errorf("%w: sock_diag socket: %w", ErrNetlink, err)
		}
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			_ = unix.Close(fd)
			return fmt.Errorf("%w: sock_diag bind: %w", ErrNetlink, err)
		}
		d = &diagSocket{fd: fd}
		return nil
	})
	return d, err
}
