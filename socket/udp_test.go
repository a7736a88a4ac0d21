package socket

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/softnet-go/softnet/mbuf"
)

// udpPair returns a bound unconnected socket and a socket dialed (connected) to it.
func udpPair(t *testing.T, network, addr string) (srv, cli *Socket) {
	t.Helper()
	srv, err := ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	cli, err = Dial(tctx(t, 5*time.Second), network, srv.LocalAddr().String())
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); cli.Close() })
	return srv, cli
}

func TestUDPBoundaries(t *testing.T) {
	clean(t)
	srv, cli := udpPair(t, "udp", "127.0.0.1:0")
	sizes := []int{0, 1, 1200, 0, 2047, 2048, 2049, 9000, 65507, 3, 0}
	for i, n := range sizes {
		if _, err := cli.Write(randBytes(uint64(i), n)); err != nil {
			t.Fatalf("write %d bytes: %v", n, err)
		}
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 70000)
	for i, n := range sizes {
		k, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if k != n || !bytes.Equal(buf[:k], randBytes(uint64(i), n)) {
			t.Fatalf("datagram %d: got %d bytes, want %d", i, k, n)
		}
		if from.String() != cli.LocalAddr().String() {
			t.Fatalf("from %v, want %v", from, cli.LocalAddr())
		}
	}
	// A short buffer truncates, as with net.UDPConn, and the next datagram is intact.
	cli.Write([]byte("0123456789"))
	cli.Write([]byte("ab"))
	small := make([]byte, 4)
	if k, err := srv.Read(small); k != 4 || err != nil || string(small) != "0123" {
		t.Fatalf("truncated read: %d %v %q", k, err, small)
	}
	if k, err := srv.Read(small); k != 2 || err != nil || string(small[:2]) != "ab" {
		t.Fatalf("next read: %d %v %q", k, err, small[:k])
	}
}

// TestUDPWorkerInput makes the worker read (recvmmsg) rather than the reader: datagrams
// pile up while nobody reads, then come out one per Recv, with their senders.
func TestUDPWorkerInput(t *testing.T) {
	clean(t)
	srv, cli := udpPair(t, "udp4", "127.0.0.1:0")
	sizes := []int{5, 0, 3000, 70, 0, 65000, 1}
	for i, n := range sizes {
		if _, err := cli.Write(randBytes(uint64(100+i), n)); err != nil {
			t.Fatal(err)
		}
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, n := range sizes {
		m, from, err := srv.RecvFrom()
		if err != nil {
			t.Fatal(err)
		}
		if m.PktHdr() == nil || m.PktHdr().Len != n || m.Length() != n {
			t.Fatalf("datagram %d: packet of %d bytes, want %d", i, m.Length(), n)
		}
		got := make([]byte, n)
		m.CopyData(0, got)
		m.FreeM()
		if !bytes.Equal(got, randBytes(uint64(100+i), n)) {
			t.Fatalf("datagram %d differs", i)
		}
		if from.String() != cli.LocalAddr().String() {
			t.Fatalf("from %v, want %v", from, cli.LocalAddr())
		}
	}
}

func TestUDPSendRecvMbuf(t *testing.T) {
	clean(t)
	srv, cli := udpPair(t, "udp", "127.0.0.1:0")
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	for j := 0; j < 100; j += 10 { // ten at a time, so that the kernel drops none
		for i := j; i < j+10; i++ {
			m, err := mbuf.GetHdr(mbuf.DontWait, mbuf.MTData)
			if err != nil {
				t.Fatal(err)
			}
			m.Append(randBytes(uint64(i), i*37), mbuf.DontWait)
			if err := cli.Send(m); err != nil {
				t.Fatal(err)
			}
		}
		for i := j; i < j+10; i++ {
			m, err := srv.Recv(0)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, m.Length())
			m.CopyData(0, got)
			m.FreeM()
			if !bytes.Equal(got, randBytes(uint64(i), i*37)) {
				t.Fatalf("datagram %d: %d bytes", i, len(got))
			}
		}
	}
	// A datagram larger than the send buffer fails with EMSGSIZE.
	big, _ := mbuf.GetM(nil, 70000, mbuf.DontWait, mbuf.MTData, mbuf.MPktHdr)
	for x := big; x != nil; x = x.Next() {
		x.Extend(len(x.Tail()))
	}
	if err := cli.Send(big); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("Send of 70000 bytes: %v, want EMSGSIZE", err)
	}
}

func TestUDPWriteTo(t *testing.T) {
	clean(t)
	a, b := listenUDP(t), listenUDP(t)
	bAddr := netip.MustParseAddrPort(b.LocalAddr().String())
	if _, err := a.Write([]byte("x")); !errors.Is(err, syscall.EDESTADDRREQ) {
		t.Fatalf("Write on an unconnected socket: %v, want EDESTADDRREQ", err)
	}
	if _, err := a.WriteToUDPAddrPort([]byte("ping"), bAddr); err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 10)
	n, from, err := b.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("%q %v", buf[:n], err)
	}
	if _, err := b.WriteToUDPAddrPort([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err = a.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("%q %v", buf[:n], err)
	}
}

func TestUDPIPv6(t *testing.T) {
	clean(t)
	if c, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback:", err)
	} else {
		c.Close()
	}
	srv, cli := udpPair(t, "udp6", "[::1]:0")
	for _, n := range []int{0, 10, 5000} {
		if _, err := cli.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, from, err := srv.ReadFromUDPAddrPort(make([]byte, 6000))
		if err != nil || k != n || !from.Addr().Is6() {
			t.Fatalf("got %d from %v, %v; want %d", k, from, err, n)
		}
	}
}

func TestUDPDeadlineAndClose(t *testing.T) {
	clean(t)
	srv, _ := udpPair(t, "udp", "127.0.0.1:0")
	srv.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := srv.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want deadline", err)
	}
	srv.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := srv.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	srv.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after Close")
	}
}

func TestUDPFromConn(t *testing.T) {
	clean(t)
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	so, err := FromConn(pc)
	if err != nil {
		t.Fatal(err)
	}
	defer so.Close()
	c, err := net.Dial("udp", so.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hi"))
	so.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 10)
	n, from, err := so.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "hi" || from.String() != c.LocalAddr().String() {
		t.Fatalf("%q from %v: %v", buf[:n], from, err)
	}
}

// TestUDPSendManySegments: a datagram in more mbufs than one sendmsg takes (UIO_MAXIOV,
// 1024), as m_fragment makes, still goes out whole.
func TestUDPSendManySegments(t *testing.T) {
	clean(t)
	srv, cli := udpPair(t, "udp", "127.0.0.1:0")
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	want := randBytes(99, 1500)
	m, err := mbuf.GetHdr(mbuf.DontWait, mbuf.MTData)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Append(want, mbuf.DontWait); err != nil {
		t.Fatal(err)
	}
	if m, err = m.Fragment(mbuf.DontWait, 1); err != nil {
		t.Fatal(err)
	}
	segs := 0
	for x := m; x != nil; x = x.Next() {
		segs++
	}
	if n := segs; n <= 1024 {
		t.Fatalf("the chain has %d mbufs; the test needs more than 1024", n)
	}
	if err := cli.Send(m); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2000)
	n, err := srv.Read(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:n], want) {
		t.Fatalf("got %d bytes, want the %d sent", n, len(want))
	}
}
