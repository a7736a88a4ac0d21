package socket

import (
	"context"
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

var bgctx = context.Background()

// netipPort returns ap with its port replaced.
func netipPort(ap netip.AddrPort, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr(), port)
}

// netinfo is what a network name ("tcp", "udp6", ...) says: the socket type and which
// address families it allows.
type netinfo struct {
	name   string
	sotype int // unix.SOCK_STREAM or unix.SOCK_DGRAM
	family int // unix.AF_INET, unix.AF_INET6, or 0 for either
}

func (ni netinfo) tcp() bool { return ni.sotype == unix.SOCK_STREAM }

// parseNetwork checks a network name: tcp, tcp4, tcp6, udp, udp4 or udp6.
func parseNetwork(network string) (netinfo, error) {
	ni := netinfo{name: network}
	switch network {
	case "tcp", "tcp4", "tcp6":
		ni.sotype = unix.SOCK_STREAM
	case "udp", "udp4", "udp6":
		ni.sotype = unix.SOCK_DGRAM
	default:
		return ni, net.UnknownNetworkError(network)
	}
	switch network[3:] {
	case "4":
		ni.family = unix.AF_INET
	case "6":
		ni.family = unix.AF_INET6
	}
	return ni, nil
}

// resolve turns "host:port" into addresses the network allows, literal IPs without a
// lookup. An empty host gives the unspecified address (listen) or nothing (the caller
// decides). The port may be a service name.
func resolve(ctx context.Context, ni netinfo, address string, passive bool) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		p, err := net.DefaultResolver.LookupPort(ctx, ni.name, portStr)
		if err != nil {
			return nil, err
		}
		port = uint64(p)
	}
	if host == "" {
		var ip netip.Addr
		switch {
		case passive && ni.family == unix.AF_INET:
			ip = netip.IPv4Unspecified()
		case passive:
			ip = netip.IPv6Unspecified()
		case ni.family == unix.AF_INET6:
			ip = netip.IPv6Loopback()
		default:
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		return []netip.AddrPort{netip.AddrPortFrom(ip, uint16(port))}, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !familyAllows(ni.family, ip) {
			return nil, &net.AddrError{Err: "address family mismatch", Addr: address}
		}
		return []netip.AddrPort{netip.AddrPortFrom(ip, uint16(port))}, nil
	}
	want := "ip"
	switch ni.family {
	case unix.AF_INET:
		want = "ip4"
	case unix.AF_INET6:
		want = "ip6"
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, want, host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		if familyAllows(ni.family, ip.Unmap()) {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
		}
	}
	if len(out) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: address}
	}
	return out, nil
}

func familyAllows(family int, ip netip.Addr) bool {
	switch family {
	case unix.AF_INET:
		return ip.Is4() || ip.Is4In6()
	case unix.AF_INET6:
		return ip.Is6() && !ip.Is4In6()
	}
	return true
}

// socketFamily picks the family of the socket for an address: an IPv4 address gets an
// AF_INET socket unless the network is "tcp6"/"udp6"; the unspecified IPv6 address of a
// dual-stack "tcp"/"udp" listener gets AF_INET6 with IPV6_V6ONLY off.
func socketFamily(ni netinfo, ap netip.AddrPort) int {
	if ni.family != 0 {
		return ni.family
	}
	if ap.Addr().Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// sockaddr converts an address to the sockaddr of a socket of the given family (an IPv4
// address on an AF_INET6 socket becomes v4-mapped).
func sockaddr(family int, ap netip.AddrPort) unix.Sockaddr {
	ip := ap.Addr()
	if family == unix.AF_INET {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.Unmap().As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	if z := ip.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		} else if n, err := strconv.Atoi(z); err == nil {
			sa.ZoneId = uint32(n)
		}
	}
	return sa
}

// addrPort converts a sockaddr back, unmapping v4-mapped addresses as package net does
// when it prints them.
func addrPort(sa unix.Sockaddr) (netip.AddrPort, bool) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), true
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(sa.Addr)
		if ip.Is4In6() {
			ip = ip.Unmap()
		} else if sa.ZoneId != 0 {
			ip = ip.WithZone(strconv.Itoa(int(sa.ZoneId)))
		}
		return netip.AddrPortFrom(ip, uint16(sa.Port)), true
	}
	return netip.AddrPort{}, false
}

// netAddr converts a sockaddr to a *net.TCPAddr or *net.UDPAddr (nil if sa is nil).
func netAddr(tcp bool, sa unix.Sockaddr) net.Addr {
	ap, ok := addrPort(sa)
	if !ok {
		return nil
	}
	if tcp {
		return net.TCPAddrFromAddrPort(ap)
	}
	return net.UDPAddrFromAddrPort(ap)
}

// peer returns the connected peer's address: the one accept, connect or FromConn's
// getpeername had when the socket was made (raddr), with no system call; the zero
// AddrPort for an unconnected socket.
func (so *Socket) peer() netip.AddrPort { return so.raddr }

// localAddr returns the local address, from the cache once the kernel has assigned the
// port (getsockname the first time), or nil if it cannot be had.
func (so *Socket) localAddr() net.Addr {
	ap := so.laddr.Load()
	if ap == nil {
		if so.state.Load()&ssDestroyed != 0 {
			return nil
		}
		sa, err := unix.Getsockname(so.fd)
		if err != nil {
			return nil
		}
		a, ok := addrPort(sa)
		if !ok {
			return nil
		}
		if a.Port() != 0 { // bound: the address stays
			so.laddr.Store(&a)
		}
		ap = &a
	}
	return so.proto().netAddr(*ap)
}
