package isolation

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCredSupported: Linux reports the peer of a Unix socket with
// SO_PEERCRED.
const peerCredSupported = true

// peerCred returns the credentials the kernel recorded for the peer when
// it connected.
func peerCred(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("isolation: peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("isolation: peer credentials: %w", err)
	}
	if serr != nil {
		return Peer{}, fmt.Errorf("isolation: peer credentials: SO_PEERCRED: %w", serr)
	}
	return Peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}
