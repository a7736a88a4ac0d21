package socket

import (
	"net"
	"net/netip"
)

// A protosw is BSD's struct protosw with the part of its pr_usrreqs this socket layer
// calls: what TCP and UDP do differently, so that the socket layer asks its protocol
// (so.proto()) instead of testing the socket type. Only what differs is here; what a
// single call site decides about one protocol option of its own (TCP keepalive, the
// kernel's SO_LINGER) stays a test of the type where it is made.
type protosw struct {
	flags uint32 // pr_flags: prAtomic, prConnRequired, prKernelSplice

	// input is the protocol's input routine, the socket's half of tcp_input or
	// udp_input: on the worker, it reads the kernel socket into so_rcv and calls
	// sorwakeup.
	input func(so *Socket)
	// output is the output routine behind pru_send (tcp_output, udp_output): on the
	// worker, it writes so_snd to the kernel socket and calls sowwakeup.
	output func(so *Socket)
	// reserve says that input reads into the cluster a memory wait won (takeReserve):
	// TCP reads into whatever storage it is given; UDP input allocates a batch of its
	// own, so for it the wait is only the wake-up.
	reserve bool
	// netAddr gives an address as the protocol's net.Addr: *net.TCPAddr, *net.UDPAddr.
	netAddr func(netip.AddrPort) net.Addr
}

// protosw flags (pr_flags).
const (
	// prAtomic is PR_ATOMIC: data moves as whole datagrams, each a record of the
	// sockbuf; somove moves them whole (UDP).
	prAtomic = 1 << iota
	// prConnRequired is PR_CONNREQUIRED: data moves only over a connection made first;
	// sosplice refuses a source that is neither connected nor connecting (TCP).
	prConnRequired
	// prKernelSplice: a splice may move the data with splice(2) through a pipe
	// (SpliceKernel, and SpliceAuto's kernel path). Linux splices from TCP sockets only.
	prKernelSplice
	// prAddr is PR_ADDR: each datagram carries its peer's address, so the calls that
	// take or give one (ReadFromUDPAddrPort, WriteToUDPAddrPort, RecvFrom) apply (UDP).
	prAddr
)

// The protocol switch: inetsw's TCP and UDP entries. The routines are set by init: they
// reach proto() themselves, which a static initializer of these variables may not.
var tcpProto, udpProto protosw

func init() {
	tcpProto = protosw{
		flags:   prConnRequired | prKernelSplice,
		input:   (*Socket).tcpInput,
		output:  (*Socket).tcpOutput,
		reserve: true,
		netAddr: func(ap netip.AddrPort) net.Addr { return net.TCPAddrFromAddrPort(ap) },
	}
	udpProto = protosw{
		flags:   prAtomic | prAddr,
		input:   (*Socket).udpInput,
		output:  (*Socket).udpOutput,
		netAddr: func(ap netip.AddrPort) net.Addr { return net.UDPAddrFromAddrPort(ap) },
	}
}

// proto is pffindtype(): the protocol of the network's socket type.
func (ni netinfo) proto() *protosw {
	if ni.tcp() {
		return &tcpProto
	}
	return &udpProto
}

// proto is so->so_proto.
func (so *Socket) proto() *protosw { return so.ni.proto() }
