package relay

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// proxyV2Sig is the 12-byte signature that starts a PROXY protocol version 2 header.
var proxyV2Sig = [12]byte{'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n'}

// proxyHeader returns the PROXY protocol header (HAProxy's proxy-protocol.txt) that tells
// a target about a TCP client: src is the client's address, dst the address it connected
// to. Addresses of different families are both given as IPv6 (IPv4-mapped); an address
// that is not TCP gives the "UNKNOWN" (v1) or LOCAL (v2) form.
func proxyHeader(v ProxyVersion, src, dst net.Addr) []byte {
	s, sok := addrPort(src)
	d, dok := addrPort(dst)
	ok := sok && dok
	if ok && s.Addr().Is4() != d.Addr().Is4() {
		s = netip.AddrPortFrom(netip.AddrFrom16(s.Addr().As16()), s.Port())
		d = netip.AddrPortFrom(netip.AddrFrom16(d.Addr().As16()), d.Port())
	}
	if v == ProxyV1 {
		if !ok {
			return []byte("PROXY UNKNOWN\r\n")
		}
		fam := "TCP6"
		if s.Addr().Is4() {
			fam = "TCP4"
		}
		return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", fam, s.Addr(), d.Addr(), s.Port(), d.Port())
	}
	b := append([]byte(nil), proxyV2Sig[:]...)
	if !ok {
		return append(b, 0x20, 0x00, 0, 0) // version 2, LOCAL; family UNSPEC; no addresses
	}
	if s.Addr().Is4() {
		b = append(b, 0x21, 0x11, 0, 12) // version 2, PROXY; TCP over IPv4; 12 bytes
		b = append(b, s.Addr().AsSlice()...)
		b = append(b, d.Addr().AsSlice()...)
	} else {
		b = append(b, 0x21, 0x21, 0, 36) // TCP over IPv6; 36 bytes
		a16, b16 := s.Addr().As16(), d.Addr().As16()
		b = append(b, a16[:]...)
		b = append(b, b16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, s.Port())
	return binary.BigEndian.AppendUint16(b, d.Port())
}

// addrPort returns a TCP address as a netip.AddrPort, IPv4-mapped addresses unmapped
// and without an IPv6 zone: a zone (fe80::1%eth0) names an interface of this host, means
// nothing to the target, and is no part of the PROXY protocol's address syntax (HAProxy
// refuses a v1 header that carries one).
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta == nil {
		return netip.AddrPort{}, false
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()), ap.IsValid()
}
