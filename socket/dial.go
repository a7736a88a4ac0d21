package socket

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"

	"github.com/softnet-go/softnet/netq"
	"golang.org/x/sys/unix"
)

// A Dialer chooses where dialed sockets run. The zero value dials on netq.Default(),
// spreading sockets over its workers round-robin.
type Dialer struct {
	// Worker, if set, is the worker the socket runs on. A relay dials its target on the
	// worker of the client's socket (Socket.Worker) so that both ends of its splices share
	// one worker and the splice task never crosses workers.
	Worker *netq.Worker
	// Group is the set of workers to spread over when Worker is nil; nil means
	// netq.Default().
	Group *netq.Group
	// LocalAddr, if set, is bound before connecting (a *net.TCPAddr or *net.UDPAddr).
	LocalAddr net.Addr
}

var rr atomic.Uint32 // round-robin over workers

func (d *Dialer) worker() *netq.Worker {
	if d != nil && d.Worker != nil {
		return d.Worker
	}
	g := netq.Default()
	if d != nil && d.Group != nil {
		g = d.Group
	}
	return g.Worker(rr.Add(1))
}

// Dial connects to the address on the named network (tcp, tcp4, tcp6, udp, udp4, udp6)
// with a non-blocking connect that the worker completes, and returns when the connection
// is up, it fails, or ctx ends. Host names are resolved with net.DefaultResolver and
// tried in order. The socket runs on a worker of netq.Default().
func Dial(ctx context.Context, network, address string) (*Socket, error) {
	var d Dialer
	return d.DialContext(ctx, network, address)
}

// DialContext is Dial on d's worker.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (*Socket, error) {
	ni, err := parseNetwork(network)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	aps, err := resolve(ctx, ni, address, false)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var first error
	for _, ap := range aps {
		so, err := d.connect(ni, ap, nil)
		if err == nil {
			err = so.waitConnected(ctx)
			if err == nil {
				return so, nil
			}
			so.Close()
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil && errors.Is(first, ctx.Err()) {
		first = ctx.Err()
	}
	return nil, &net.OpError{Op: "dial", Net: network, Addr: ni.proto().netAddr(aps[0]), Err: first}
}

// Connect starts a connection to a numeric address ("192.0.2.1:80", "[::1]:80") and
// returns the socket at once, still connecting: soconnect() without the wait. It never
// blocks, so it may be called on a worker (in a handler or a splice callback). The
// socket may be spliced at once, as source or drain (OpenBSD allows a connecting
// socket): data waits until the connection is up. If it fails, the error is the
// socket's pending error (reported by Read, Write or WaitSplice, or ending its
// splices).
func (d *Dialer) Connect(network, address string) (*Socket, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	return d.connectAddrPort(network, ap, nil)
}

// connectAddrPort is Connect and ConnectFunc: it starts the connect to ap, with
// onConnect (nil for Connect) as the socket's callback.
func (d *Dialer) connectAddrPort(network string, ap netip.AddrPort, onConnect func(error)) (*Socket, error) {
	ni, err := parseNetwork(network)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if !familyAllows(ni.family, ap.Addr()) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "address family mismatch", Addr: ap.String()}}
	}
	so, err := d.connect(ni, ap, onConnect)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: ni.proto().netAddr(ap), Err: err}
	}
	return so, nil
}

// ConnectFunc is Connect to an address already parsed (a relay's resolved target: no
// string to format and parse per connection) that says when the connection is up: fn
// runs once, on the
// socket's worker, with nil when the connect completes or with its error when it fails
// (a *os.SyscallError: errors.Is(err, syscall.ECONNREFUSED) works), unless the socket
// was closed first — closing it is how a caller gives up on a connect, after a
// timeout of its own (a netq.Timer on the same worker). It is how a relay connects to
// its target from the worker that accepted the client, with no goroutine waiting: see
// ListenConfig.OnAccept. fn must not block.
//
// A connect that fails at once (on loopback the kernel may refuse a closed port inside
// connect(2)) is returned as the error, and fn is not called. A connect that completes
// at once (a UDP socket) runs fn in a later turn of the worker, never inside
// ConnectFunc.
func (d *Dialer) ConnectFunc(network string, addr netip.AddrPort, fn func(err error)) (*Socket, error) {
	if fn == nil {
		panic("socket: ConnectFunc with a nil callback")
	}
	so, err := d.connectAddrPort(network, addr, fn)
	if err != nil {
		return nil, err
	}
	if so.state.Load()&ssConnecting == 0 {
		// Connected in connect(2) itself: no EPOLLOUT edge will say so.
		so.w.Add(netq.NewTask(func() { so.connected(nil) }))
	}
	return so, nil
}

// connect makes the socket, binds it if asked and starts connect(2); onConnect, if set,
// is ConnectFunc's callback.
func (d *Dialer) connect(ni netinfo, ap netip.AddrPort, onConnect func(error)) (*Socket, error) {
	family := socketFamily(ni, ap)
	ni.family = family
	fd, err := newSysSocket(family, ni.sotype)
	if err != nil {
		return nil, err
	}
	if d != nil && d.LocalAddr != nil {
		var lap netip.AddrPort
		switch a := d.LocalAddr.(type) {
		case *net.TCPAddr:
			lap = a.AddrPort()
		case *net.UDPAddr:
			lap = a.AddrPort()
		}
		if err := unix.Bind(fd, sockaddr(family, lap)); err != nil {
			unix.Close(fd)
			return nil, os.NewSyscallError("bind", err)
		}
	}
	state := uint32(ssConnected)
	err = unix.Connect(fd, sockaddr(family, ap))
	switch err {
	case nil:
	case unix.EINPROGRESS, unix.EINTR: // interrupted, the connect goes on: not made again
		state = ssConnecting
	default:
		unix.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	return newSocket(fd, d.worker(), ni, state, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), onConnect)
}

// waitConnected blocks until a connecting socket is connected or failed, or ctx ends.
func (so *Socket) waitConnected(ctx context.Context) error {
	sb := &so.snd
	sb.mu.Lock()
	defer sb.mu.Unlock()
	for {
		st := so.state.Load()
		if st&ssConnecting == 0 {
			if e := so.takeError(); e != 0 {
				return os.NewSyscallError("connect", e)
			}
			if st&ssConnected == 0 {
				return os.NewSyscallError("connect", unix.ENOTCONN)
			}
			return nil
		}
		if !sb.waitUntil(ctx.Done()) {
			return ctx.Err()
		}
	}
}
