package relay

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/softnet-go/softnet/netq"
	"github.com/softnet-go/softnet/socket"
)

// socketEngine splices with package socket: both ends of a flow on one netq worker, the
// ends of its splices reported by callbacks on that worker, no goroutine per flow.
type socketEngine struct {
	mode    socket.SpliceMode
	workers *netq.Group // nil: netq.Default()
	next    *atomic.Uint32
	sockbuf *atomic.Int64 // nil: the kernel's autotuning
}

// newSocketEngine returns the engine that splices with package socket on workers; its
// sockets get buffers of sockbuf's size when they are made.
func newSocketEngine(m Mode, workers *netq.Group, sockbuf *atomic.Int64) (engine, error) {
	e := socketEngine{workers: workers, next: new(atomic.Uint32), sockbuf: sockbuf}
	switch m {
	case ModeAuto, "":
		e.mode = socket.SpliceAuto
	case ModeUser:
		e.mode = socket.SpliceUser
	case ModeKernel:
		e.mode = socket.SpliceKernel
	default:
		return nil, fmt.Errorf("unknown mode %q", m)
	}
	return e, nil
}

func (e socketEngine) listen(network, addr string) (net.Listener, error) {
	lc := socket.ListenConfig{Group: e.workers}
	l, err := lc.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return socketListener{l, e}, nil
}

// size returns the buffer size for a new socket.
func (e socketEngine) size() int64 {
	if e.sockbuf == nil {
		return 0
	}
	return e.sockbuf.Load()
}

// socketListener is a *socket.Listener as a net.Listener. It sizes the buffers of every
// socket it accepts: Socket.SetReadBuffer and SetWriteBuffer set the user-space
// sockbuf's high-water mark and the kernel socket's SO_RCVBUF/SO_SNDBUF alike.
type socketListener struct {
	*socket.Listener
	e socketEngine
}

func (l socketListener) Accept() (net.Conn, error) {
	for {
		s, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if err := setSockBuf(s, l.e.size(), false); err != nil {
			// A socket that cannot be sized is refused, not relayed unbounded.
			s.Close()
			continue
		}
		return s, nil
	}
}

// dial connects on near's worker, so that both ends of the flow's splices share it.
func (e socketEngine) dial(ctx context.Context, network, addr string, near net.Conn) (net.Conn, error) {
	d := socket.Dialer{Group: e.workers}
	if s, ok := near.(*socket.Socket); ok {
		d.Worker = s.Worker()
	}
	s, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	// After the connect, so the SYN's window scale is the kernel's default; the window
	// then never grows past the buffer.
	if err := setSockBuf(s, e.size(), isUDP(network)); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (e socketEngine) fromConn(c *net.UDPConn) (net.Conn, error) {
	var w *netq.Worker
	if e.workers != nil {
		w = e.workers.Worker(e.next.Add(1))
	}
	s, err := socket.FromConnOn(c, w)
	if err != nil {
		return nil, err
	}
	if err := setSockBuf(s, e.size(), true); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (e socketEngine) start(d *direction, max int64, idle time.Duration, done func(error)) error {
	src, dst := d.src.(*socket.Socket), d.dst.(*socket.Socket)
	return src.Splice(dst, socket.SpliceOptions{Max: max, Idle: idle, Mode: e.mode, OnEnd: done})
}

func (socketEngine) moved(d *direction) int64 { return d.src.(*socket.Socket).SpliceLen() }
