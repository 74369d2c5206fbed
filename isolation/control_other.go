//go:build !linux && !darwin

package isolation

import (
	"fmt"
	"net"
)

// peerCredSupported: this platform gives no peer credentials for Unix
// sockets that this package can read (on Windows, AF_UNIX has no
// SO_PEERCRED and file modes do not restrict it), so ListenControl
// refuses to start rather than serve an unchecked socket.
const peerCredSupported = false

func peerCred(*net.UnixConn) (Peer, error) {
	return Peer{}, fmt.Errorf("isolation: peer credentials: %w", ErrUnsupported)
}
