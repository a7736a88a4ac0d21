package socket

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// The interfaces of package net and io a Socket and a Listener satisfy, for programs
// that embed them where a net.Conn, net.PacketConn or net.Listener is expected.
//
// A *Socket is a net.Conn, an io.ReaderFrom, an io.WriterTo and a syscall.Conn, as a
// *net.TCPConn is. It cannot also be a net.PacketConn: io.ReaderFrom's ReadFrom(r
// io.Reader) and net.PacketConn's ReadFrom(p []byte) share a name, and a type has one
// method of a name. Package net settles it by type: *net.TCPConn has io.ReaderFrom's,
// *net.UDPConn net.PacketConn's. A Socket is either, so it keeps io.ReaderFrom's (and
// io.WriterTo's WriteTo, which meets net.PacketConn's WriteTo(p, addr) in the same way),
// and PacketConn returns a UDP socket as a net.PacketConn. Likewise Listener.Accept
// returns a *Socket, and NetListener returns the listener as a net.Listener.
var (
	_ net.Conn       = (*Socket)(nil)
	_ io.ReaderFrom  = (*Socket)(nil)
	_ io.WriterTo    = (*Socket)(nil)
	_ syscall.Conn   = (*Socket)(nil)
	_ net.PacketConn = packetConn{}
	_ net.Listener   = netListener{}
)

// PacketConn returns the socket as a net.PacketConn, as a *net.UDPConn is one: its
// ReadFrom and WriteTo are ReadFromUDPAddrPort and WriteToUDPAddrPort with net.Addr
// addresses (*net.UDPAddr), and every other method is the Socket's (Close closes it).
// It is for a UDP socket; on a TCP socket ReadFrom and WriteTo fail with EOPNOTSUPP.
// The value is a view of so, made without allocating.
func (so *Socket) PacketConn() net.PacketConn { return packetConn{so} }

// packetConn is PacketConn's view: a Socket whose ReadFrom and WriteTo are
// net.PacketConn's. Its other methods (ReadFromUDPAddrPort, SyscallConn...) are the
// Socket's, promoted.
type packetConn struct{ *Socket }

// ReadFrom is net.PacketConn's: one datagram into b, and its sender.
func (c packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// WriteTo is net.PacketConn's: b as one datagram to addr, which must be a *net.UDPAddr
// (EINVAL otherwise, as package net).
func (c packetConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	a, ok := addr.(*net.UDPAddr)
	if !ok || a == nil {
		return 0, &net.OpError{Op: "write", Net: c.ni.name, Source: c.localAddr(), Addr: addr, Err: syscall.EINVAL}
	}
	return c.WriteToUDPAddrPort(b, a.AddrPort())
}

// NetListener returns the listener as a net.Listener, whose Accept returns the next
// connection's *Socket as a net.Conn (Close and Addr are the Listener's): for servers
// written against net.Listener, net/http's among them.
func (l *Listener) NetListener() net.Listener { return netListener{l} }

// netListener is NetListener's view of a Listener.
type netListener struct{ *Listener }

// Accept is net.Listener's: Listener.Accept, its *Socket as a net.Conn.
func (l netListener) Accept() (net.Conn, error) {
	so, err := l.Listener.Accept()
	if err != nil {
		return nil, err // not a nil *Socket in a non-nil net.Conn
	}
	return so, nil
}

// ReadFrom is io.ReaderFrom, as net.TCPConn's: it writes what r yields until EOF to the
// socket, and returns the bytes written. The bytes take the shortest path the source
// allows:
//
//   - r a TCP *Socket (or an *io.LimitedReader of one): a splice from r to so (Splice,
//     SpliceAuto: the user path, or splice(2) for a bulk flow), until r's EOF (or N
//     bytes, and the LimitedReader's N goes down by what moved). The deadline is the
//     earlier of r's read and so's write deadline when ReadFrom begins; at it the
//     splice is dissolved (Unsplice) and ReadFrom fails with a timeout.
//   - r an *os.File of a regular file (or an *io.LimitedReader of one): SendFile from
//     the file's offset, which moves on by what was sent.
//   - anything else: a copy through a buffer, Write by Write.
//
// As io.Copy, it does not pass the EOF on: shut the socket down yourself (CloseWrite).
func (so *Socket) ReadFrom(r io.Reader) (int64, error) {
	src, limit := r, int64(0)
	lr, limited := r.(*io.LimitedReader)
	if limited {
		if lr.N <= 0 {
			return 0, nil
		}
		src, limit = lr.R, lr.N
	}
	var n int64
	var err error
	handled := false
	switch s := src.(type) {
	case *Socket:
		n, handled, err = s.spliceTo(so, limit, "readfrom")
	case *os.File:
		n, handled, err = so.sendFileFrom(s, limit)
	}
	if !handled {
		return io.Copy(writerOnly{so}, r)
	}
	if limited {
		lr.N -= n
	}
	return n, err
}

// WriteTo is io.WriterTo: it writes what the socket receives until EOF to w, and
// returns the bytes written. To a TCP *Socket it is a splice from so to w (Splice,
// SpliceAuto), until so's EOF, with the deadline ReadFrom has; to anything else a copy
// through a buffer, Read by Read.
func (so *Socket) WriteTo(w io.Writer) (int64, error) {
	if dst, ok := w.(*Socket); ok {
		if n, handled, err := so.spliceTo(dst, 0, "writeto"); handled {
			return n, err
		}
	}
	return io.Copy(w, readerOnly{so})
}

// writerOnly and readerOnly hide a Socket's ReadFrom and WriteTo from io.Copy, which
// would otherwise call them back: the generic path of ReadFrom and WriteTo.
type (
	writerOnly struct{ io.Writer }
	readerOnly struct{ io.Reader }
)

// spliceTo moves src's data to dst with a splice until src's EOF (or max bytes, if not
// 0), for ReadFrom and WriteTo (op), and returns the bytes moved. It handles only a TCP
// pair (a datagram socket's records have no stream to splice into); handled is false
// otherwise, and the caller copies.
func (src *Socket) spliceTo(dst *Socket, max int64, op string) (n int64, handled bool, err error) {
	if src.proto() != &tcpProto || dst.proto() != &tcpProto { // a byte stream both ways
		return 0, false, nil
	}
	ctx, cancel := context.WithCancel(bgctx)
	if t := earliest(src.dl.rd.Load(), dst.dl.wr.Load()); !t.IsZero() {
		ctx, cancel = context.WithDeadline(bgctx, t)
	}
	defer cancel()
	if err := src.Splice(dst, SpliceOptions{Max: max}); err != nil {
		return 0, true, dst.opError(op, err)
	}
	err = src.WaitSplice(ctx)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// The deadline: dissolve the splice, unless it ended on its own meanwhile.
		if src.Unsplice() == nil {
			err = errTimeout
		} else {
			err = src.WaitSplice(bgctx)
		}
	}
	n = src.SpliceLen()
	if max > 0 && n == max && errors.Is(err, syscall.EFBIG) {
		err = nil // the LimitedReader's N, exactly
	}
	if err != nil {
		return n, true, dst.opError(op, err)
	}
	return n, true, nil
}

// earliest returns the earlier of two deadlines that are set (nil or zero: not set), or
// the zero time.
func earliest(a, b *deadline) time.Time {
	var t time.Time
	for _, d := range []*deadline{a, b} {
		if d == nil {
			continue
		}
		if w := d.when(); !w.IsZero() && (t.IsZero() || w.Before(t)) {
			t = w
		}
	}
	return t
}

// sendFileFrom is ReadFrom from a regular file: SendFile from the file's offset (max
// bytes if not 0, else to its end), moving the offset on by what was sent. handled is
// false for a file SendFile cannot send from (not a regular file, no offset), and the
// caller copies.
func (so *Socket) sendFileFrom(f *os.File, max int64) (n int64, handled bool, err error) {
	if so.proto().flags&prAtomic != 0 {
		return 0, false, nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false, nil
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, false, nil
	}
	if max <= 0 {
		max = 1<<63 - 1 // to the end, however far it has grown
	}
	n, err = so.SendFile(f, off, max, nil)
	if _, serr := f.Seek(off+n, io.SeekStart); serr != nil && err == nil {
		err = serr
	}
	return n, true, err
}
