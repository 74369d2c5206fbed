package isolation

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCredSupported: macOS reports the peer of a Unix socket with
// LOCAL_PEERCRED (and its pid with LOCAL_PEERPID).
const peerCredSupported = true

// peerCred returns the credentials the kernel recorded for the peer when
// it connected.
func peerCred(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("isolation: peer credentials: %w", err)
	}
	var cred *unix.Xucred
	var pid int
	var serr, perr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		pid, perr = unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	}); err != nil {
		return Peer{}, fmt.Errorf("isolation: peer credentials: %w", err)
	}
	if serr != nil {
		return Peer{}, fmt.Errorf("isolation: peer credentials: LOCAL_PEERCRED: %w", serr)
	}
	p := Peer{UID: cred.Uid}
	if cred.Ngroups > 0 {
		p.GID = cred.Groups[0]
	}
	if perr == nil {
		p.PID = int32(pid)
	}
	return p, nil
}
