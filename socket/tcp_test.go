package socket

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func TestTCPEcho(t *testing.T) {
	clean(t)
	c, s := pair(t, "tcp", "127.0.0.1:0")
	data := randBytes(1, 3<<20)
	go func() {
		io.Copy(writerOnly{s}, readerOnly{s}) // echo: Socket as io.Reader and io.Writer (io.Copy(s, s) would splice)
		s.CloseWrite()
	}()
	errc := make(chan error, 1)
	go func() {
		for off := 0; off < len(data); {
			n := min(len(data)-off, 1+rand.IntN(100000))
			if _, err := c.Write(data[off : off+n]); err != nil {
				errc <- err
				return
			}
			off += n
		}
		errc <- c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo: got %d bytes, want %d (equal prefix: %v)", len(got), len(data), bytes.HasPrefix(data, got))
	}
}

func TestTCPEchoMany(t *testing.T) {
	clean(t)
	ln, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const conns = 64
	go func() {
		for {
			s, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer s.Close()
				io.Copy(s, s)
				s.CloseWrite()
				io.Copy(io.Discard, s)
			}()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(tctx(t, 20*time.Second), "tcp", ln.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			data := randBytes(uint64(i), 100<<10+i*997)
			go func() {
				c.Write(data)
				c.CloseWrite()
			}()
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil {
				errs <- err
				return
			}
			if want := sha256.Sum256(data); n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
				errs <- errors.New("echo mismatch")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestTCPRecvSend(t *testing.T) {
	clean(t)
	c, s := pair(t, "tcp", "127.0.0.1:0")
	data := randBytes(7, 1<<20)
	go func() {
		c.Write(data)
		c.CloseWrite()
	}()
	var got []byte
	for {
		m, err := s.Recv(0)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for x := m; x != nil; x = x.Next() {
			got = append(got, x.Data()...)
		}
		if err := s.Send(m); err != nil { // echo the chain back without copying
			t.Fatal(err)
		}
	}
	s.CloseWrite()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) || !bytes.Equal(back, data) {
		t.Fatalf("got %d, back %d, want %d", len(got), len(back), len(data))
	}
}

func TestTCPHalfClose(t *testing.T) {
	clean(t)
	c, s := pair(t, "tcp", "127.0.0.1:0")
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "hello" {
		t.Fatalf("server read %q, %v", got, err)
	}
	// The other direction still works.
	if _, err := s.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	got, err = io.ReadAll(c)
	if err != nil || string(got) != "world" {
		t.Fatalf("client read %q, %v", got, err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write after CloseWrite: %v, want EPIPE", err)
	}
}

func TestTCPDeadlines(t *testing.T) {
	clean(t)
	c, s := pair(t, "tcp", "127.0.0.1:0")
	// Read deadline.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := c.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want deadline exceeded", err)
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read error %v is not a timeout net.Error", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Fatalf("read deadline fired after %v", d)
	}
	// Clearing it makes the socket usable again.
	c.SetReadDeadline(time.Time{})
	s.Write([]byte("x"))
	if n, err := c.Read(make([]byte, 10)); n != 1 || err != nil {
		t.Fatalf("read after clearing: %d, %v", n, err)
	}
	// A deadline set while blocked wakes the reader.
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.SetReadDeadline(time.Now())
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with deadline set while blocked: %v", err)
	}
	// Write deadline: fill the pipe (nobody reads s).
	s.SetReadBuffer(4096)
	c.SetWriteBuffer(4096)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 64<<10)
	for {
		_, err := c.Write(buf)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write: %v, want deadline exceeded", err)
			}
			break
		}
	}
	// Both (SetDeadline) in the past: immediate.
	c.SetDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with past deadline: %v", err)
	}
	if _, err := c.Write(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write with past deadline: %v", err)
	}
}

func TestTCPCloseWhileBlocked(t *testing.T) {
	clean(t)
	c, s := pair(t, "tcp", "127.0.0.1:0")
	_ = s
	rd := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		rd <- err
	}()
	// A writer blocked on a full buffer.
	c2, s2 := pair(t, "tcp", "127.0.0.1:0")
	_ = s2
	s2.SetReadBuffer(4096)
	c2.SetWriteBuffer(4096)
	wr := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<20)
		for {
			if _, err := c2.Write(buf); err != nil {
				wr <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	c2.Close()
	for _, ch := range []chan error{rd, wr} {
		select {
		case err := <-ch:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("blocked call returned %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("blocked call did not return after Close")
		}
	}
}

func TestTCPReset(t *testing.T) {
	clean(t)
	c, s := pair(t, "tcp", "127.0.0.1:0")
	_ = c
	// The peer is a plain net.Conn that resets: SO_LINGER 0, then close.
	ln, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	so, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Close()
	_ = s
	nc.(*net.TCPConn).SetLinger(0)
	nc.Close()
	so.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = so.Read(make([]byte, 10))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after peer reset: %v, want ECONNRESET", err)
	}
	// Reported once: then EOF.
	if _, err := so.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("second read: %v, want EOF", err)
	}
}

func TestTCPIPv6(t *testing.T) {
	clean(t)
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	ln.Close()
	c, s := pair(t, "tcp6", "[::1]:0")
	if _, err := c.Write([]byte("six")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	if _, err := io.ReadFull(s, b); err != nil || string(b) != "six" {
		t.Fatalf("%q %v", b, err)
	}
	if a := c.RemoteAddr().(*net.TCPAddr); a.IP.To4() != nil {
		t.Fatalf("remote address %v is not IPv6", a)
	}
}

func TestTCPFromConn(t *testing.T) {
	clean(t)
	a, b := netPair(t)
	if _, err := a.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	so, err := FromConn(b)
	if err != nil {
		t.Fatal(err)
	}
	defer so.Close()
	// b is closed: using it fails.
	if _, err := b.Write([]byte("x")); err == nil {
		t.Fatal("the net.Conn still works after FromConn")
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(so, buf); err != nil || string(buf) != "before" {
		t.Fatalf("%q %v", buf, err)
	}
	if _, err := so.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "after" {
		t.Fatalf("%q %v", got, err)
	}
	if so.RemoteAddr().String() != a.LocalAddr().String() {
		t.Fatalf("RemoteAddr %v, want %v", so.RemoteAddr(), a.LocalAddr())
	}
}

func TestTCPFromListener(t *testing.T) {
	clean(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.FileConn(f) // a net.Conn over a listening socket
	f.Close()
	if err != nil {
		t.Skip("FileConn of a listener:", err)
	}
	so, err := FromConn(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := so.Read(make([]byte, 1)); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("read of a listening socket: %v, want ENOTCONN", err)
	}
	so.Close()
}

func TestDialRefused(t *testing.T) {
	clean(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := Dial(tctx(t, 5*time.Second), "tcp", addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial of a closed port: %v, want ECONNREFUSED", err)
	}
}
