package socket

import (
	"bytes"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// udpRig is a UDP relay under test: client (net) → src (bound, unconnected Socket) ...
// dst (connected Socket) → server (net).
type udpRig struct {
	client, server *net.UDPConn
	src, dst       *Socket
}

func newUDPRig(t *testing.T, srcNet, srcAddr, dstNet, dstAddr string) *udpRig {
	t.Helper()
	server, err := net.ListenUDP(dstNet, mustUDPAddr(t, dstAddr))
	if err != nil {
		t.Skip("cannot listen:", err)
	}
	src, err := ListenPacket(srcNet, srcAddr)
	if err != nil {
		server.Close()
		t.Fatal(err)
	}
	dst, err := (&Dialer{Worker: src.Worker()}).DialContext(tctx(t, 5*time.Second), dstNet, server.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.DialUDP(srcNet, nil, mustUDPAddr(t, src.LocalAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	r := &udpRig{client: client, server: server, src: src, dst: dst}
	t.Cleanup(func() { client.Close(); server.Close(); src.Close(); dst.Close() })
	return r
}

func mustUDPAddr(t *testing.T, s string) *net.UDPAddr {
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// recvDatagrams reads n datagrams from c.
func recvDatagrams(t *testing.T, c *net.UDPConn, n int) [][]byte {
	t.Helper()
	var out [][]byte
	buf := make([]byte, 70000)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range n {
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(out), err)
		}
		out = append(out, bytes.Clone(buf[:k]))
	}
	return out
}

// settle waits until the source's kernel socket (or sockbuf) has the datagrams sent.
func settle() { time.Sleep(30 * time.Millisecond) }

func forUDPModes(t *testing.T, f func(t *testing.T, mode SpliceMode)) {
	for _, mode := range []SpliceMode{SpliceUser, SpliceAuto} {
		t.Run(mode.String(), func(t *testing.T) {
			clean(t)
			f(t, mode)
		})
	}
}

func TestSpliceUDP(t *testing.T) {
	forUDPModes(t, func(t *testing.T, mode SpliceMode) {
		r := newUDPRig(t, "udp4", "127.0.0.1:0", "udp4", "127.0.0.1:0")
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		sizes := []int{0, 1, 1200, 0, 3000, 65000, 5}
		var total int64
		for round := range 20 {
			for i, n := range sizes {
				if _, err := r.client.Write(randBytes(uint64(round*100+i), n)); err != nil {
					t.Fatal(err)
				}
				total += int64(n)
			}
			got := recvDatagrams(t, r.server, len(sizes))
			for i, n := range sizes {
				if !bytes.Equal(got[i], randBytes(uint64(round*100+i), n)) {
					t.Fatalf("round %d datagram %d: %d bytes, want %d", round, i, len(got[i]), n)
				}
			}
		}
		if n := r.src.SpliceLen(); n != total {
			t.Fatalf("SpliceLen = %d, want %d (payload bytes)", n, total)
		}
		if err := r.src.Unsplice(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSpliceUDPMax(t *testing.T) {
	forUDPModes(t, func(t *testing.T, mode SpliceMode) {
		// OpenBSD udp/args-max: lengths 1, 3, 1 with max 4 send "1 3", EFBIG.
		r := newUDPRig(t, "udp", "127.0.0.1:0", "udp", "127.0.0.1:0")
		for _, d := range []string{"a", "bcd", "e"} {
			r.client.Write([]byte(d))
		}
		settle()
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode, Max: 4}); err != nil {
			t.Fatal(err)
		}
		if err := waitSplice(t, r.src, 5*time.Second); !errors.Is(err, syscall.EFBIG) {
			t.Fatalf("WaitSplice = %v, want EFBIG", err)
		}
		got := recvDatagrams(t, r.server, 2)
		if string(got[0]) != "a" || string(got[1]) != "bcd" {
			t.Fatalf("server got %q", got)
		}
		buf := make([]byte, 10)
		r.src.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := r.src.Read(buf); err != nil || string(buf[:n]) != "e" {
			t.Fatalf("leftover %q, %v", buf[:n], err)
		}

		// udp/args-max-multi: max 4 with 1, 2, 3 sends "1 2", no error; "3" stays.
		r2 := newUDPRig(t, "udp", "127.0.0.1:0", "udp", "127.0.0.1:0")
		for _, d := range []string{"a", "bc", "def"} {
			r2.client.Write([]byte(d))
		}
		settle()
		r2.src.Splice(r2.dst, SpliceOptions{Mode: mode, Max: 4})
		if err := waitSplice(t, r2.src, 5*time.Second); err != nil {
			t.Fatalf("WaitSplice = %v, want nil (the max falls inside a datagram)", err)
		}
		got = recvDatagrams(t, r2.server, 2)
		if string(got[0]) != "a" || string(got[1]) != "bc" || r2.src.SpliceLen() != 3 {
			t.Fatalf("server got %q, SpliceLen %d", got, r2.src.SpliceLen())
		}
		r2.src.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := r2.src.Read(buf); err != nil || string(buf[:n]) != "def" {
			t.Fatalf("leftover %q, %v", buf[:n], err)
		}
	})
}

func TestSpliceUDPMsgSize(t *testing.T) {
	forUDPModes(t, func(t *testing.T, mode SpliceMode) {
		r := newUDPRig(t, "udp", "127.0.0.1:0", "udp", "127.0.0.1:0")
		r.dst.SetWriteBuffer(1000)
		r.client.Write([]byte("small"))
		r.client.Write(make([]byte, 2000))
		settle()
		r.src.Splice(r.dst, SpliceOptions{Mode: mode})
		if err := waitSplice(t, r.src, 5*time.Second); !errors.Is(err, syscall.EMSGSIZE) {
			t.Fatalf("WaitSplice = %v, want EMSGSIZE", err)
		}
		if got := recvDatagrams(t, r.server, 1); string(got[0]) != "small" {
			t.Fatalf("%q", got)
		}
		r.src.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := r.src.Read(make([]byte, 3000)); n != 2000 || err != nil {
			t.Fatalf("the big datagram should stay readable: %d, %v", n, err)
		}
	})
}

func TestSpliceUDPIdle(t *testing.T) {
	forUDPModes(t, func(t *testing.T, mode SpliceMode) {
		r := newUDPRig(t, "udp", "127.0.0.1:0", "udp", "127.0.0.1:0")
		start := time.Now()
		r.src.Splice(r.dst, SpliceOptions{Mode: mode, Idle: 100 * time.Millisecond})
		r.client.Write([]byte("x"))
		recvDatagrams(t, r.server, 1)
		if err := waitSplice(t, r.src, 5*time.Second); !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("WaitSplice = %v, want ETIMEDOUT", err)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Fatalf("idle after %v", d)
		}
	})
}

// TestSpliceUDPv4ToV6 splices an IPv4 source to an IPv6 drain.
func TestSpliceUDPv4ToV6(t *testing.T) {
	forUDPModes(t, func(t *testing.T, mode SpliceMode) {
		r := newUDPRig(t, "udp4", "127.0.0.1:0", "udp6", "[::1]:0")
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		r.client.Write([]byte("four to six"))
		if got := recvDatagrams(t, r.server, 1); string(got[0]) != "four to six" {
			t.Fatalf("%q", got)
		}
	})
}

// TestSpliceTCPv4ToV6 does the same for TCP.
func TestSpliceTCPv4ToV6(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		srv, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			t.Skip(err)
		}
		defer srv.Close()
		ln, _ := Listen("tcp4", "127.0.0.1:0")
		defer ln.Close()
		c, _ := net.Dial("tcp4", ln.Addr().String())
		defer c.Close()
		src, _ := ln.Accept()
		defer src.Close()
		dst, err := (&Dialer{Worker: src.Worker()}).DialContext(tctx(t, 5*time.Second), "tcp6", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		s, _ := srv.Accept()
		defer s.Close()
		if err := src.Splice(dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		data := randBytes(3, 300000)
		c.Write(data)
		if got := readN(t, s, len(data)); !bytes.Equal(got, data) {
			t.Fatal("differs")
		}
	})
}

// TestSpliceUDPBurst sends bursts of equal-sized datagrams, which the drain's output
// sends as UDP GSO messages: each must still arrive as itself.
func TestSpliceUDPBurst(t *testing.T) {
	forUDPModes(t, func(t *testing.T, mode SpliceMode) {
		r := newUDPRig(t, "udp", "127.0.0.1:0", "udp", "127.0.0.1:0")
		r.server.SetReadBuffer(4 << 20)
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		gso0 := gsoMsgs.Load()
		defer func() { t.Logf("%d GSO messages", gsoMsgs.Load()-gso0) }()
		for round := range 10 {
			var want [][]byte
			for i := range 40 {
				n := 1000
				if i%13 == 12 {
					n = 500 // a short one ends a GSO message
				}
				d := randBytes(uint64(round*1000+i), n)
				want = append(want, d)
				r.client.Write(d)
			}
			got := recvDatagrams(t, r.server, len(want))
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("round %d datagram %d: %d bytes, want %d", round, i, len(got[i]), len(want[i]))
				}
			}
		}
	})
}
