package socket

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"
)

// TestNetConn runs package nettest's conformance tests of net.Conn (basic I/O, ping-pong,
// racy reads and writes, deadlines past, present and future, Close during calls,
// concurrent methods) on a pair of Sockets.
func TestNetConn(t *testing.T) {
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		c, s := pair(t, "tcp", "127.0.0.1:0")
		return c, s, func() { c.Close(); s.Close() }, nil
	})
}

// TestPacketConn: a UDP Socket's PacketConn sends and receives with net.Addr addresses,
// and refuses an address that is not UDP; a TCP socket's refuses both calls.
func TestPacketConn(t *testing.T) {
	clean(t)
	a, b := listenUDP(t), listenUDP(t)
	var pa, pb net.PacketConn = a.PacketConn(), b.PacketConn()
	if _, err := pa.WriteTo([]byte("ping"), pb.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	pb.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	n, from, err := pb.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
	}
	if from.String() != pa.LocalAddr().String() {
		t.Errorf("sender %v, want %v", from, pa.LocalAddr())
	}
	if _, ok := from.(*net.UDPAddr); !ok {
		t.Errorf("sender is a %T, want *net.UDPAddr", from)
	}
	if _, err := pa.WriteTo([]byte("x"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("WriteTo a TCP address: %v, want EINVAL", err)
	}
	pb.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := pb.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrom past its deadline: %v", err)
	}
	if err := pb.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	c, _ := pair(t, "tcp", "127.0.0.1:0")
	if _, _, err := c.PacketConn().ReadFrom(buf); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("a TCP socket's ReadFrom: %v, want EOPNOTSUPP", err)
	}
}

// TestNetListener: NetListener serves a net.Listener's users, its connections the
// Sockets Accept returns, and reports Close as net.ErrClosed without a nil *Socket in a
// non-nil net.Conn.
func TestNetListener(t *testing.T) {
	clean(t)
	l, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var nl net.Listener = l.NetListener()
	if nl.Addr().String() != l.Addr().String() {
		t.Errorf("Addr %v, want %v", nl.Addr(), l.Addr())
	}
	c, err := net.Dial("tcp", nl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn, err := nl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := conn.(*Socket); !ok {
		t.Errorf("Accept returned a %T, want *Socket", conn)
	}
	conn.Close()
	nl.Close()
	conn, err = nl.Accept()
	if !errors.Is(err, net.ErrClosed) || conn != nil {
		t.Errorf("Accept after Close = %v, %v; want nil, net.ErrClosed", conn, err)
	}
}

// TestReadFromSocketSplices: ReadFrom a TCP Socket (and WriteTo one) moves the bytes
// with a splice, not through a buffer: the source's SpliceLen counts them, byte-exact,
// and a LimitedReader of a Socket moves exactly N, leaving the rest readable.
func TestReadFromSocketSplices(t *testing.T) {
	clean(t)
	data := randBytes(11, 1<<20)
	for _, name := range []string{"ReadFrom", "WriteTo", "LimitedReader"} {
		t.Run(name, func(t *testing.T) {
			src, peer := pair(t, "tcp", "127.0.0.1:0")
			dst, sink := pair(t, "tcp", "127.0.0.1:0")
			go func() { peer.Write(data); peer.CloseWrite() }()
			got := make(chan []byte, 1)
			go func() { b, _ := io.ReadAll(sink); got <- b }()
			var n int64
			var err error
			want := data
			switch name {
			case "ReadFrom":
				n, err = dst.ReadFrom(src)
			case "WriteTo":
				n, err = src.WriteTo(dst)
			case "LimitedReader":
				lr := &io.LimitedReader{R: src, N: 1000}
				n, err = io.Copy(dst, lr)
				want = data[:1000]
				if lr.N != 0 {
					t.Errorf("LimitedReader left N = %d", lr.N)
				}
				rest, rerr := io.ReadAll(src)
				if rerr != nil || !bytes.Equal(rest, data[1000:]) {
					t.Errorf("after the limit the source had %d bytes (%v), want the %d left", len(rest), rerr, len(data)-1000)
				}
			}
			if err != nil || n != int64(len(want)) {
				t.Fatalf("%s = %d, %v; want %d", name, n, err, len(want))
			}
			if src.SpliceLen() != n {
				t.Errorf("SpliceLen %d after moving %d: not a splice", src.SpliceLen(), n)
			}
			dst.CloseWrite()
			if b := <-got; !bytes.Equal(b, want) {
				t.Errorf("the sink got %d bytes, not the %d sent", len(b), len(want))
			}
		})
	}
}

// TestReadFromTimeout: a ReadFrom splice ends at the drain's write deadline, with a
// timeout, and the source is readable again.
func TestReadFromTimeout(t *testing.T) {
	clean(t)
	src, peer := pair(t, "tcp", "127.0.0.1:0")
	dst, _ := pair(t, "tcp", "127.0.0.1:0")
	dst.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := dst.ReadFrom(src)
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ReadFrom a quiet source past the deadline = %d, %v; want a timeout", n, err)
	}
	peer.Write([]byte("after"))
	src.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 5)
	if _, err := io.ReadFull(src, b); err != nil || string(b) != "after" {
		t.Errorf("read after the splice: %q, %v", b, err)
	}
}

// TestReadFromFileSendfile: ReadFrom a regular file is SendFile (sendfile(2) is
// called): the file's bytes arrive, its offset moves past them, and a LimitedReader of it
// sends exactly N.
func TestReadFromFileSendfile(t *testing.T) {
	clean(t)
	data := randBytes(12, 300<<10)
	f := tempFile(t, data)
	if _, err := f.Seek(100, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	c, s := pair(t, "tcp", "127.0.0.1:0")
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(s); got <- b }()
	calls := sendfileCalls.Load()
	n, err := c.ReadFrom(&io.LimitedReader{R: f, N: 1000})
	if err != nil || n != 1000 {
		t.Fatalf("ReadFrom a LimitedReader of a file = %d, %v", n, err)
	}
	n, err = c.ReadFrom(f)
	if err != nil || n != int64(len(data)-1100) {
		t.Fatalf("ReadFrom the file = %d, %v; want %d", n, err, len(data)-1100)
	}
	if off, _ := f.Seek(0, io.SeekCurrent); off != int64(len(data)) {
		t.Errorf("file offset %d after ReadFrom, want %d", off, len(data))
	}
	if sendfileCalls.Load() < calls+2 {
		t.Errorf("%d sendfile(2) calls for two ReadFrom: not SendFile", sendfileCalls.Load()-calls)
	}
	c.CloseWrite()
	if b := <-got; !bytes.Equal(b, data[100:]) {
		t.Errorf("the peer got %d bytes, not the file's %d from offset 100", len(b), len(data)-100)
	}
}

// TestReadFromGeneric: ReadFrom any other reader copies it; WriteTo any other writer too.
func TestReadFromGeneric(t *testing.T) {
	clean(t)
	data := randBytes(13, 100<<10)
	c, s := pair(t, "tcp", "127.0.0.1:0")
	go func() {
		c.ReadFrom(bytes.NewReader(data))
		c.CloseWrite()
	}()
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("WriteTo a bytes.Buffer = %d, %v; %d bytes match", n, err, len(buf.Bytes()))
	}
	if s.SpliceLen() != 0 {
		t.Errorf("SpliceLen %d: a generic copy spliced", s.SpliceLen())
	}
}

// TestSyscallConn: Control sees the socket's descriptor; RawConn.Read waits for the
// worker to see data (the first call finds none) and reads it; RawConn.Write writes.
func TestSyscallConn(t *testing.T) {
	clean(t)
	c, s := pair(t, "tcp", "127.0.0.1:0")
	rc, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var typ int
	if err := rc.Control(func(fd uintptr) {
		typ, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	}); err != nil || typ != unix.SOCK_STREAM {
		t.Fatalf("Control: SO_TYPE %d, %v", typ, err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		c.Write([]byte("raw"))
	}()
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	calls := 0
	var got []byte
	err = rc.Read(func(fd uintptr) bool {
		calls++
		b := make([]byte, 16)
		n, err := unix.Read(int(fd), b)
		if err == unix.EAGAIN {
			return false
		}
		got = b[:max(n, 0)]
		return true
	})
	if err != nil || string(got) != "raw" {
		t.Fatalf("RawConn.Read = %q, %v", got, err)
	}
	if calls < 2 {
		t.Errorf("RawConn.Read called f %d times: it did not wait", calls)
	}
	if err := rc.Write(func(fd uintptr) bool {
		_, err := unix.Write(int(fd), []byte("back"))
		return err != unix.EAGAIN
	}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "back" {
		t.Fatalf("after RawConn.Write the peer read %q, %v", b, err)
	}
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if err := rc.Read(func(uintptr) bool { return false }); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("RawConn.Read past its deadline: %v", err)
	}
	s.Close()
	if err := rc.Control(func(uintptr) {}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Control after Close: %v", err)
	}
}

// TestConcurrentWritesStayWhole: Writes of several goroutines on one socket are
// serialized (sblock): each arrives whole, not mixed with another's, though each is
// larger than the kernel and the sockbuf take at once.
func TestConcurrentWritesStayWhole(t *testing.T) {
	clean(t)
	c, s := pair(t, "tcp", "127.0.0.1:0")
	const writers, size = 4, 1 << 20
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Write(bytes.Repeat([]byte{byte('a' + i)}, size))
		}()
	}
	go func() { wg.Wait(); c.CloseWrite() }()
	s.SetReadDeadline(time.Now().Add(30 * time.Second))
	all, err := io.ReadAll(s)
	if err != nil || len(all) != writers*size {
		t.Fatalf("read %d bytes, %v; want %d", len(all), err, writers*size)
	}
	for k := 0; k < len(all); k += size {
		if n := bytes.Count(all[k:k+size], all[k:k+1]); n != size {
			t.Fatalf("the write at %d is mixed: %d of %d bytes are %q", k, n, size, all[k])
		}
	}
}

// TestOpErrorUsesCachedAddrs: an error names the socket's addresses, and those stay
// known after the descriptor is gone.
func TestOpErrorUsesCachedAddrs(t *testing.T) {
	clean(t)
	c, s := pair(t, "tcp", "127.0.0.1:0")
	local, remote := c.LocalAddr().String(), c.RemoteAddr().String()
	c.Close()
	_, err := c.Read(make([]byte, 1))
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Source == nil || oe.Addr == nil {
		t.Fatalf("Read after Close: %v", err)
	}
	if oe.Source.String() != local || oe.Addr.String() != remote {
		t.Errorf("error names %v -> %v, want %v -> %v", oe.Source, oe.Addr, local, remote)
	}
	if c.LocalAddr() != nil {
		t.Errorf("LocalAddr after Close = %v, want nil", c.LocalAddr())
	}
	_ = s
}

// TestConstructorErrors: the constructors' errors are *net.OpError, FromConn's
// included.
func TestConstructorErrors(t *testing.T) {
	var oe *net.OpError
	if _, err := FromConn(fakeConn{}); !errors.As(err, &oe) || oe.Op != "fromconn" {
		t.Errorf("FromConn of a conn without SyscallConn: %#v", err)
	}
	if _, err := Listen("udp", "127.0.0.1:0"); !errors.As(err, &oe) {
		t.Errorf("Listen udp: %#v", err)
	}
	if _, err := ListenPacket("tcp", "127.0.0.1:0"); !errors.As(err, &oe) {
		t.Errorf("ListenPacket tcp: %#v", err)
	}
	ap := netip.MustParseAddrPort("127.0.0.1:1")
	if _, err := (&Dialer{}).ConnectFunc("sctp", ap, func(error) {}); !errors.As(err, &oe) {
		t.Errorf("ConnectFunc sctp: %#v", err)
	}
	if _, err := Dial(tctx(t, time.Second), "tcp", "127.0.0.1:bad"); !errors.As(err, &oe) {
		t.Errorf("Dial to a bad port: %#v", err)
	}
}

// fakeConn is a net.Conn with no descriptor.
type fakeConn struct{ net.Conn }

func (fakeConn) LocalAddr() net.Addr  { return nil }
func (fakeConn) RemoteAddr() net.Addr { return nil }

// listenUDP returns a UDP socket bound to a port of 127.0.0.1, closed with t.
func listenUDP(t *testing.T) *Socket {
	t.Helper()
	so, err := ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { so.Close() })
	return so
}

// tempFile returns a file holding data, open for reading, closed with t.
func tempFile(t *testing.T, data []byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
