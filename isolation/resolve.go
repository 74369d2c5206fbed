package isolation

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Resolver looks up host names. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ManagementEndpoint is one configured management endpoint (a bus server
// URL's host and port). The Manager resolves it to addresses before every
// apply and refreshes it while isolated.
type ManagementEndpoint struct {
	// Address is "host:port"; host is a name or an IPv4/IPv6 literal
	// ("[2001:db8::1]:4222").
	Address string `json:"address"`
	// Protocol is ProtocolTCP (the zero value ProtocolAny also means TCP)
	// or ProtocolUDP.
	Protocol Protocol `json:"protocol,omitzero"`
}

func (e ManagementEndpoint) split() (host string, port uint16, proto Protocol, err error) {
	h, p, err := net.SplitHostPort(e.Address)
	if err != nil {
		return "", 0, 0, fmt.Errorf("isolation: %w: management endpoint %q: %v", ErrInvalidConfig, e.Address, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, 0, fmt.Errorf("isolation: %w: management endpoint %q: port must be 1-65535", ErrInvalidConfig, e.Address)
	}
	if h == "" || strings.ContainsAny(h, " \t\r\n/") {
		return "", 0, 0, fmt.Errorf("isolation: %w: management endpoint %q: bad host", ErrInvalidConfig, e.Address)
	}
	proto = e.Protocol
	if proto == ProtocolAny {
		proto = ProtocolTCP
	}
	if proto != ProtocolTCP && proto != ProtocolUDP {
		return "", 0, 0, fmt.Errorf("isolation: %w: management endpoint %q: protocol %s (want tcp or udp)", ErrInvalidConfig, e.Address, proto)
	}
	return h, uint16(n), proto, nil
}

// resolveEndpoints resolves every configured endpoint. An endpoint that
// cannot be resolved keeps its cached addresses (from the last successful
// resolution, persisted). It fails with ErrResolve only when endpoints are
// configured and none has an address.
func resolveEndpoints(ctx context.Context, r Resolver, eps []ManagementEndpoint, cached []Endpoint, timeout time.Duration) ([]Endpoint, []error, error) {
	var out []Endpoint
	var errs []error
	for _, ce := range eps {
		host, port, proto, err := ce.split()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ep := Endpoint{Name: ce.Address, Protocol: proto, Port: port}
		if a, perr := netip.ParseAddr(host); perr == nil {
			ep.Addrs = []netip.Addr{a.Unmap()}
		} else {
			lctx, cancel := context.WithTimeout(ctx, timeout)
			addrs, lerr := r.LookupNetIP(lctx, "ip", host)
			cancel()
			for _, a := range addrs {
				if a.IsValid() && !a.IsUnspecified() {
					ep.Addrs = append(ep.Addrs, a.Unmap().WithZone(""))
				}
			}
			if lerr != nil || len(ep.Addrs) == 0 {
				if lerr == nil {
					lerr = fmt.Errorf("no address")
				}
				errs = append(errs, fmt.Errorf("resolve %s: %w", host, lerr))
				ep.Addrs = nil
				for _, c := range cached {
					if c.Name == ep.Name && c.Protocol == ep.Protocol && c.Port == ep.Port {
						ep.Addrs = append(ep.Addrs, c.Addrs...)
					}
				}
			}
		}
		if len(ep.Addrs) > 0 {
			out = append(out, ep.normalize())
		}
	}
	if len(eps) > 0 && len(out) == 0 {
		return nil, errs, fmt.Errorf("isolation: %w: %v", ErrResolve, errs)
	}
	return out, errs, nil
}
