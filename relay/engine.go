package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/netq"
)

// An engine makes a relay's sockets and moves the bytes of one direction of a flow. The
// splicing modes use package socket; the benchmark baselines use package net, so that
// `spliced bench` compares them through the same relay code.
type engine interface {
	// listen opens a TCP listener.
	listen(network, addr string) (net.Listener, error)
	// dial connects to a target, on the same worker as near where the engine has workers.
	dial(ctx context.Context, network, addr string, near net.Conn) (net.Conn, error)
	// fromConn takes over a *net.UDPConn for the engine (a UDP flow's client side).
	fromConn(c *net.UDPConn) (net.Conn, error)
	// start starts moving bytes from d.src to d.dst until d.src's EOF (nil), max bytes
	// (EFBIG), idle (ETIMEDOUT) or an error (the source's, or EPIPE or the drain's), and
	// then calls done with the ending, once. done must not block. If start returns an
	// error, done is not called.
	start(d *direction, max int64, idle time.Duration, done func(error)) error
	// moved returns the bytes d has moved so far.
	moved(d *direction) int64
}

// newEngine returns the engine of a mode. Its sockets get kernel buffers of sockbuf's
// size at the time each is made (0: the kernel's autotuning).
func newEngine(m Mode, workers *netq.Group, sockbuf *atomic.Int64) (engine, error) {
	switch m {
	case ModeIOCopy:
		return ioCopyEngine{netEngine{sockbuf}}, nil
	case ModeCopy:
		return bufCopyEngine{netEngine{sockbuf}}, nil
	}
	return newSocketEngine(m, workers, sockbuf)
}

// minUDPSndBuf is the least send buffer a UDP socket gets, however small the configured
// size: a datagram larger than the drain's send sockbuf cannot be spliced (EMSGSIZE), and
// 64 KiB holds any datagram (DESIGN §5).
const minUDPSndBuf = 64 << 10

// bufferSetter is what *socket.Socket, *net.TCPConn and *net.UDPConn share for sizing
// their buffers.
type bufferSetter interface {
	SetReadBuffer(n int) error
	SetWriteBuffer(n int) error
}

// setSockBuf sizes the buffers of a new socket, as soreserve() at socket creation: the
// receive buffer (SO_RCVBUF) to n and the send buffer (SO_SNDBUF) to n, or for UDP at
// least minUDPSndBuf. Setting SO_RCVBUF or SO_SNDBUF also turns Linux's autotuning of
// that buffer off (SOCK_RCVBUF_LOCK, SOCK_SNDBUF_LOCK), which is the point: a stalled
// flow then holds at most about twice n in each kernel buffer (the kernel doubles the
// size for its bookkeeping) instead of tcp_rmem's maximum. n = 0 leaves the socket alone.
func setSockBuf(c net.Conn, n int64, udp bool) error {
	if n <= 0 {
		return nil
	}
	b, ok := c.(bufferSetter)
	if !ok {
		return fmt.Errorf("cannot size the buffers of a %T", c)
	}
	snd := int(n)
	if udp {
		snd = max(snd, minUDPSndBuf)
	}
	if err := b.SetReadBuffer(int(n)); err != nil {
		return err
	}
	return b.SetWriteBuffer(snd)
}

// isUDP reports whether network names a UDP network.
func isUDP(network string) bool { return strings.HasPrefix(network, "udp") }

// A direction is one half of a flow: bytes from src to dst.
type direction struct {
	src, dst net.Conn
	n        atomic.Int64 // bytes moved, as the baseline engines count them
}

// netEngine makes plain package-net sockets, for the baselines.
type netEngine struct {
	sockbuf *atomic.Int64 // nil: the kernel's autotuning
}

// size returns the buffer size for a new socket.
func (e netEngine) size() int64 {
	if e.sockbuf == nil {
		return 0
	}
	return e.sockbuf.Load()
}

func (e netEngine) listen(network, addr string) (net.Listener, error) {
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return netListener{l, e}, nil
}

// netListener sizes the buffers of the connections it accepts.
type netListener struct {
	net.Listener
	e netEngine
}

func (l netListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if err := setSockBuf(c, l.e.size(), false); err != nil {
			// A connection that cannot be sized is refused, not relayed unbounded.
			c.Close()
			continue
		}
		return c, nil
	}
}

func (e netEngine) dial(ctx context.Context, network, addr string, _ net.Conn) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if err := setSockBuf(c, e.size(), isUDP(network)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (e netEngine) fromConn(c *net.UDPConn) (net.Conn, error) {
	if err := setSockBuf(c, e.size(), true); err != nil {
		return nil, err
	}
	return c, nil
}

func (netEngine) moved(d *direction) int64 { return d.n.Load() }

// goMove runs a baseline's blocking move on a goroutine of its own: one per direction,
// as Go relays do.
func goMove(move func(*direction, int64, time.Duration) error, d *direction, max int64, idle time.Duration, done func(error)) error {
	go func() { done(move(d, max, idle)) }()
	return nil
}

func (e ioCopyEngine) start(d *direction, max int64, idle time.Duration, done func(error)) error {
	return goMove(e.move, d, max, idle, done)
}

func (e bufCopyEngine) start(d *direction, max int64, idle time.Duration, done func(error)) error {
	return goMove(e.move, d, max, idle, done)
}

// ioCopyEngine is Go's io.Copy relay: between TCP connections io.Copy uses splice(2)
// through a pipe. It counts TCP bytes only at the end and has no TCP idle timeout;
// datagrams it copies as bufCopyEngine does.
type ioCopyEngine struct{ netEngine }

func (ioCopyEngine) move(d *direction, max int64, idle time.Duration) error {
	tc, ok := d.dst.(*net.TCPConn)
	if !ok {
		return copyDatagrams(d, make([]byte, 64<<10), max, idle)
	}
	var n int64
	var err error
	if max > 0 {
		n, err = tc.ReadFrom(&io.LimitedReader{R: d.src, N: max})
	} else {
		n, err = tc.ReadFrom(d.src)
	}
	d.n.Store(n)
	if err == nil && max > 0 && n == max {
		return syscall.EFBIG
	}
	return copyError(err)
}

// bufCopyEngine is the classic Go relay: a goroutine per direction copying through a
// 32 KiB buffer (64 KiB for UDP, so that any datagram fits).
type bufCopyEngine struct{ netEngine }

func (bufCopyEngine) move(d *direction, max int64, idle time.Duration) error {
	if _, ok := d.src.(*net.UDPConn); ok {
		return copyDatagrams(d, make([]byte, 64<<10), max, idle)
	}
	buf := make([]byte, 32<<10)
	var total int64
	for {
		p := buf
		if max > 0 && max-total < int64(len(p)) {
			p = p[:max-total]
		}
		if idle > 0 {
			d.src.SetReadDeadline(time.Now().Add(idle))
		}
		n, err := d.src.Read(p)
		if n > 0 {
			if _, werr := d.dst.Write(p[:n]); werr != nil {
				return writeError(werr)
			}
			total += int64(n)
			d.n.Store(total)
			if max > 0 && total == max {
				return syscall.EFBIG
			}
		}
		if err != nil {
			return copyError(err)
		}
	}
}

// copyDatagrams relays one datagram per read, ending at max like a UDP splice: a
// datagram that lands exactly on max ends with EFBIG; one that would cross it is dropped
// and ends the copy without error.
func copyDatagrams(d *direction, buf []byte, max int64, idle time.Duration) error {
	var total int64
	for {
		if idle > 0 {
			d.src.SetReadDeadline(time.Now().Add(idle))
		}
		n, err := d.src.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return err
			}
			return copyError(err)
		}
		if max > 0 && total+int64(n) > max {
			return nil
		}
		if _, err := d.dst.Write(buf[:n]); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return writeError(err)
		}
		total += int64(n)
		d.n.Store(total)
		if max > 0 && total == max {
			return syscall.EFBIG
		}
	}
}

// copyError turns a read error of the baselines into a splice ending: EOF is nil, a
// passed deadline is ETIMEDOUT.
func copyError(err error) error {
	var ne net.Error
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &ne) && ne.Timeout():
		return syscall.ETIMEDOUT
	}
	return err
}

// writeError turns a write error of the baselines into a splice ending: a drain that
// cannot send is EPIPE, as OpenBSD reports it.
func writeError(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if errno == syscall.ECONNRESET {
			return syscall.EPIPE
		}
		return errno
	}
	return fmt.Errorf("write: %w", err)
}
