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
}

// newSocketEngine returns the engine that splices with package socket on workers.
func newSocketEngine(m Mode, workers *netq.Group) (engine, error) {
	e := socketEngine{workers: workers, next: new(atomic.Uint32)}
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
	return socketListener{l}, nil
}

// socketListener is a *socket.Listener as a net.Listener.
type socketListener struct{ *socket.Listener }

func (l socketListener) Accept() (net.Conn, error) {
	s, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return s, nil
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
	return s, nil
}

func (e socketEngine) start(d *direction, max int64, idle time.Duration, done func(error)) error {
	src, dst := d.src.(*socket.Socket), d.dst.(*socket.Socket)
	return src.Splice(dst, socket.SpliceOptions{Max: max, Idle: idle, Mode: e.mode, OnEnd: done})
}

func (socketEngine) moved(d *direction) int64 { return d.src.(*socket.Socket).SpliceLen() }
