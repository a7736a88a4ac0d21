package socket

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The raw sockaddrs of datagram records (a sender's or a destination's address in an
// MT_SONAME mbuf, as BSD's sbappendaddr keeps it) and of recvmmsg's names: encoded and
// decoded here without allocating, where addr.go converts unix.Sockaddr values.

// rawToAddrPort decodes a raw sockaddr_in or sockaddr_in6.
func rawToAddrPort(b []byte) netip.AddrPort {
	if len(b) < 2 {
		return netip.AddrPort{}
	}
	family := int(*(*uint16)(unsafe.Pointer(&b[0])))
	switch {
	case family == unix.AF_INET && len(b) >= unix.SizeofSockaddrInet4:
		port := binary.BigEndian.Uint16(b[2:4])
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case family == unix.AF_INET6 && len(b) >= unix.SizeofSockaddrInet6:
		port := binary.BigEndian.Uint16(b[2:4])
		ip := netip.AddrFrom16([16]byte(b[8:24]))
		return netip.AddrPortFrom(ip.Unmap(), port)
	}
	return netip.AddrPort{}
}

// rawToSockaddr decodes a raw sockaddr for unix.Sendto.
func rawToSockaddr(b []byte) unix.Sockaddr {
	ap := rawToAddrPort(b)
	family := unix.AF_INET6
	if len(b) >= 2 && int(*(*uint16)(unsafe.Pointer(&b[0]))) == unix.AF_INET {
		family = unix.AF_INET
	}
	return sockaddr(family, ap)
}

// putRawSockaddr encodes ap as a raw sockaddr for a socket of the family into b and
// returns its length.
func putRawSockaddr(b []byte, family int, ap netip.AddrPort) int {
	clear(b[:nameLen])
	if family == unix.AF_INET {
		*(*uint16)(unsafe.Pointer(&b[0])) = unix.AF_INET
		binary.BigEndian.PutUint16(b[2:4], ap.Port())
		a := ap.Addr().Unmap().As4()
		copy(b[4:8], a[:])
		return unix.SizeofSockaddrInet4
	}
	*(*uint16)(unsafe.Pointer(&b[0])) = unix.AF_INET6
	binary.BigEndian.PutUint16(b[2:4], ap.Port())
	a := ap.Addr().As16()
	copy(b[8:24], a[:])
	return unix.SizeofSockaddrInet6
}
