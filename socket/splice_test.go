package socket

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/softnet-go/softnet/netq"
	"golang.org/x/sys/unix"
)

var modes = []SpliceMode{SpliceUser, SpliceKernel, SpliceAuto}

// forModes runs f as a subtest per splice mode, each checked for leaks.
func forModes(t *testing.T, f func(t *testing.T, mode SpliceMode)) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			clean(t)
			f(t, mode)
		})
	}
}

// rig is a relay under test: client (net) → src (Socket) ... dst (Socket) → server (net).
type rig struct {
	client, server *net.TCPConn
	src, dst       *Socket
}

// newRig accepts the client on a Listener and dials the server on the client socket's
// worker (or on w if set).
func newRig(t *testing.T, w *netq.Worker) *rig {
	t.Helper()
	srvLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srvLn.Close()
	ln, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	src, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if w == nil {
		w = src.Worker()
	}
	d := Dialer{Worker: w}
	dst, err := d.DialContext(tctx(t, 10*time.Second), "tcp", srvLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := srvLn.Accept()
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{client: client.(*net.TCPConn), server: server.(*net.TCPConn), src: src, dst: dst}
	t.Cleanup(func() { r.client.Close(); r.server.Close(); r.src.Close(); r.dst.Close() })
	return r
}

func waitSplice(t *testing.T, so *Socket, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := so.WaitSplice(ctx)
	if err == context.DeadlineExceeded {
		t.Fatalf("WaitSplice did not return within %v", d)
	}
	return err
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

// readAllTimeout reads c until EOF or until n bytes, with a deadline.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b := make([]byte, n)
	k, err := io.ReadFull(c, b)
	if err != nil {
		t.Fatalf("read %d of %d bytes: %v", k, n, err)
	}
	return b
}

func TestSpliceEOF(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		r := newRig(t, nil)
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		data := randBytes(11, 4<<20)
		go func() { r.client.Write(data); r.client.CloseWrite() }()
		if got := readN(t, r.server, len(data)); sum(got) != sum(data) {
			t.Fatal("data differs")
		}
		if err := waitSplice(t, r.src, 10*time.Second); err != nil {
			t.Fatalf("WaitSplice = %v, want nil at EOF", err)
		}
		if n := r.src.SpliceLen(); n != int64(len(data)) {
			t.Fatalf("SpliceLen = %d, want %d", n, len(data))
		}
		// EOF is not passed on: the server sees no EOF until the relay shuts dst down.
		r.server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := r.server.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("server read after splice EOF: %v, want a timeout (no EOF passed on)", err)
		}
		r.dst.CloseWrite()
		r.server.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := r.server.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("server read after CloseWrite: %v, want EOF", err)
		}
		if n, err := r.src.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("source Read after the splice = %d, %v; want EOF", n, err)
		}
		if err := r.src.Unsplice(); !errors.Is(err, syscall.EPROTO) {
			t.Fatalf("Unsplice after the end = %v, want EPROTO", err)
		}
	})
}

func TestSpliceMax(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		// Max inside data that arrives after the splice started, in pieces.
		r := newRig(t, nil)
		const max = 1<<20 + 12345
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode, Max: max}); err != nil {
			t.Fatal(err)
		}
		data := randBytes(12, 2<<20)
		go func() {
			for off := 0; off < len(data); off += 100000 {
				r.client.Write(data[off:min(off+100000, len(data))])
			}
		}()
		got := readN(t, r.server, max)
		if err := waitSplice(t, r.src, 10*time.Second); !errors.Is(err, syscall.EFBIG) {
			t.Fatalf("WaitSplice = %v, want EFBIG", err)
		}
		if n := r.src.SpliceLen(); n != max {
			t.Fatalf("SpliceLen = %d, want %d", n, max)
		}
		if !bytes.Equal(got, data[:max]) {
			t.Fatal("spliced bytes differ")
		}
		// Not a byte more reaches the server.
		r.server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _ := r.server.Read(make([]byte, 1)); n != 0 {
			t.Fatal("more than max reached the drain")
		}
		// The rest is the source's to read, in order.
		rest := readN(t, r.src, len(data)-max)
		if !bytes.Equal(rest, data[max:]) {
			t.Fatal("leftover differs")
		}
		// A max larger than the data: EOF ends it without error.
		r2 := newRig(t, nil)
		r2.src.Splice(r2.dst, SpliceOptions{Mode: mode, Max: 1 << 30})
		r2.client.Write([]byte("short"))
		r2.client.CloseWrite()
		readN(t, r2.server, 5)
		if err := waitSplice(t, r2.src, 10*time.Second); err != nil {
			t.Fatalf("WaitSplice = %v, want nil", err)
		}
	})
}

func TestSpliceIdle(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		r := newRig(t, nil)
		start := time.Now()
		ended := make(chan error, 1)
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode, Idle: 300 * time.Millisecond,
			OnEnd: func(err error) { ended <- err }}); err != nil {
			t.Fatal(err)
		}
		// A trickle keeps it alive: a pass every 50 ms re-arms the timer.
		for i := range 8 {
			r.client.Write([]byte{byte(i)})
			time.Sleep(50 * time.Millisecond)
		}
		readN(t, r.server, 8)
		var err error
		select {
		case err = <-ended:
		case <-time.After(5 * time.Second):
			t.Fatal("no end 5 s after the trickle stopped")
		}
		// OnEnd tells the idle end from a connection's own ETIMEDOUT.
		if err != ErrIdle || !errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("OnEnd got %v, want ErrIdle (which is ETIMEDOUT)", err)
		}
		if d := time.Since(start); d < 650*time.Millisecond {
			t.Fatalf("idle ended after %v, while data moved every 50 ms", d)
		}
		// After the end, what arrives is the source's.
		r.client.Write([]byte("after"))
		if got := readN(t, r.src, 5); string(got) != "after" {
			t.Fatalf("read %q after idle end", got)
		}
	})
}

// TestSpliceUnsplice unsplices while data is in flight, with the server not reading so
// that bytes pile up in the drain and (kernel path) the pipe: every byte ends up either
// at the server or readable on the source, in order.
func TestSpliceUnsplice(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		r := newRig(t, nil)
		r.server.SetReadBuffer(16 << 10)
		r.dst.SetWriteBuffer(16 << 10)
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		data := randBytes(13, 4<<20)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client.Write(data)
			r.client.CloseWrite()
		}()
		time.Sleep(100 * time.Millisecond)
		if err := r.src.Unsplice(); err != nil {
			t.Fatal(err)
		}
		if err := waitSplice(t, r.src, time.Second); err != nil {
			t.Fatalf("WaitSplice after Unsplice = %v, want nil", err)
		}
		moved := r.src.SpliceLen()
		if moved <= 0 || moved >= int64(len(data)) {
			t.Fatalf("SpliceLen %d: the test wants a splice cut in the middle", moved)
		}
		var got []byte
		srvDone := make(chan []byte)
		go func() { srvDone <- readN(t, r.server, int(moved)) }()
		rest, err := io.ReadAll(r.src)
		if err != nil {
			t.Fatal(err)
		}
		got = append(<-srvDone, rest...)
		wg.Wait()
		if !bytes.Equal(got, data) {
			t.Fatalf("server %d + source %d bytes do not make the data (%d)", moved, len(rest), len(data))
		}
	})
}

func TestSpliceBothWays(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		r := newRig(t, nil)
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		if err := r.dst.Splice(r.src, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		up, down := randBytes(14, 3<<20), randBytes(15, 2<<20)
		go func() { r.client.Write(up); r.client.CloseWrite() }()
		go func() { r.server.Write(down); r.server.CloseWrite() }()
		var gotDown []byte
		done := make(chan struct{})
		go func() { gotDown = readN(t, r.client, len(down)); close(done) }()
		gotUp := readN(t, r.server, len(up))
		<-done
		if sum(gotUp) != sum(up) || sum(gotDown) != sum(down) {
			t.Fatal("data differs")
		}
		if err := waitSplice(t, r.src, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := waitSplice(t, r.dst, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSpliceSelf(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		r := newRig(t, nil)
		if err := r.src.Splice(r.src, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		data := randBytes(16, 1<<20)
		go func() { r.client.Write(data); r.client.CloseWrite() }()
		if got := readN(t, r.client, len(data)); sum(got) != sum(data) {
			t.Fatal("echo differs")
		}
		if err := waitSplice(t, r.src, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSpliceMany runs many relays at once on a group of several workers, each relay's
// two ends on one worker, plus some with their ends on different workers.
func TestSpliceMany(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		g, err := netq.NewGroup(3)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		lc := ListenConfig{Group: g}
		ln, err := lc.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		srvLn, _ := net.Listen("tcp", "127.0.0.1:0")
		defer srvLn.Close()
		const n = 24
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				data := randBytes(uint64(1000+i), 256<<10+i*1000)
				go func() { c.Write(data); c.(*net.TCPConn).CloseWrite() }()
				got, err := io.ReadAll(c)
				if err != nil || sum(got) != sum(data) {
					t.Errorf("relay %d: %d of %d bytes back, %v", i, len(got), len(data), err)
				}
			}()
		}
		// The relay: accept, dial the echo server on the same worker (or the next one
		// for every fourth), splice both ways, shut down on EOF.
		go func() {
			for {
				c, err := srvLn.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); echo(c); c.(*net.TCPConn).CloseWrite() }()
			}
		}()
		var closed sync.WaitGroup
		for i := range n {
			a, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			w := a.Worker()
			if i%4 == 3 {
				w = g.Worker(uint32(w.ID() + 1))
			}
			b, err := (&Dialer{Worker: w}).DialContext(tctx(t, 10*time.Second), "tcp", srvLn.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			closed.Add(1)
			var once sync.Once
			var mu sync.Mutex
			ends := 0
			end := func(x, y *Socket) func(error) {
				return func(err error) {
					if err != nil {
						t.Errorf("splice end: %v", err)
					}
					y.CloseWrite()
					mu.Lock()
					ends++
					last := ends == 2
					mu.Unlock()
					if last {
						once.Do(func() { a.Close(); b.Close(); closed.Done() })
					}
				}
			}
			if err := a.Splice(b, SpliceOptions{Mode: mode, OnEnd: end(a, b)}); err != nil {
				t.Fatal(err)
			}
			if err := b.Splice(a, SpliceOptions{Mode: mode, OnEnd: end(b, a)}); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		closed.Wait()
		for _, w := range g.Workers() { // let the closes queued on the workers finish
			w.Sync(context.Background())
		}
	})
}

// echo copies c to itself through a buffer (io.Copy between two *net.TCPConn would
// splice through pipes the runtime caches, which the descriptor count would see).
func echo(c net.Conn) {
	io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 32<<10))
}

// TestSpliceBackPressure relays 128 KiB through 4 KiB sockbufs (as OpenBSD's smallbuf
// tests) to a server that sleeps between small reads: everything arrives, in order, and the relay holds no more than its
// buffers.
func TestSpliceBackPressure(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		r := newRig(t, nil)
		r.src.SetReadBuffer(4096)
		r.dst.SetWriteBuffer(4096)
		// The kernel's buffers back to 64 KiB (SetReadBuffer set them too), so the test
		// measures the user-space sockbufs, not TCP's crawl through 4 KiB windows.
		unix.SetsockoptInt(r.src.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 64<<10)
		unix.SetsockoptInt(r.dst.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 64<<10)
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		data := randBytes(17, 128<<10)
		go func() { r.client.Write(data); r.client.CloseWrite() }()
		var got []byte
		buf := make([]byte, 1024)
		var maxHeld int
		r.server.SetReadDeadline(time.Now().Add(30 * time.Second))
		for len(got) < len(data) {
			time.Sleep(time.Millisecond)
			n, err := r.server.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatal(err)
			}
			r.src.rcv.mu.Lock()
			maxHeld = max(maxHeld, r.src.rcv.cc)
			r.src.rcv.mu.Unlock()
			r.dst.snd.mu.Lock()
			maxHeld = max(maxHeld, r.dst.snd.cc)
			r.dst.snd.mu.Unlock()
		}
		if !bytes.Equal(got, data) {
			t.Fatal("data differs")
		}
		if maxHeld > 4096+64<<10 {
			t.Fatalf("a sockbuf held %d bytes with 4 KiB high-water marks", maxHeld)
		}
		if err := waitSplice(t, r.src, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSpliceServerReset(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		r := newRig(t, nil)
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		r.client.Write([]byte("hello"))
		readN(t, r.server, 5)
		// No data moves now; the server resets: the splice ends promptly.
		r.server.SetLinger(0)
		r.server.Close()
		start := time.Now()
		err := waitSplice(t, r.src, 5*time.Second)
		if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("WaitSplice = %v, want EPIPE or ECONNRESET", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("the splice took %v to see the reset", d)
		}
	})
}

func TestSpliceClientReset(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		r := newRig(t, nil)
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		r.client.Write(randBytes(1, 100000))
		readN(t, r.server, 100000)
		r.client.SetLinger(0)
		r.client.Close()
		if err := waitSplice(t, r.src, 5*time.Second); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("WaitSplice = %v, want ECONNRESET", err)
		}
		// The drain is fine: the relay may still use it.
		if _, err := r.dst.Write([]byte("bye")); err != nil {
			t.Fatal(err)
		}
		if got := readN(t, r.server, 3); string(got) != "bye" {
			t.Fatalf("%q", got)
		}
	})
}

// TestSpliceResetBefore splices a source that was reset before: ENOTCONN from Splice or
// ECONNRESET from WaitSplice.
func TestSpliceResetBefore(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		r := newRig(t, nil)
		r.client.SetLinger(0)
		r.client.Close()
		time.Sleep(20 * time.Millisecond)
		err := r.src.Splice(r.dst, SpliceOptions{Mode: mode})
		if err == nil {
			err = waitSplice(t, r.src, 5*time.Second)
		}
		if !errors.Is(err, syscall.ENOTCONN) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("splice of a reset source: %v", err)
		}
	})
}

func TestSpliceOwnerWritesDrain(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		r := newRig(t, nil)
		r.dst.Write([]byte("[before]"))
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		data := randBytes(18, 1<<20)
		go func() { r.client.Write(data); r.client.CloseWrite() }()
		for range 10 {
			if _, err := r.dst.Write([]byte("[owner]")); err != nil {
				t.Fatal(err)
			}
		}
		if err := waitSplice(t, r.src, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		r.dst.Write([]byte("[after]"))
		r.dst.CloseWrite()
		got, err := io.ReadAll(r.server)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(got, []byte("[before]")) || !bytes.HasSuffix(got, []byte("[after]")) {
			t.Fatal("writes before and after the splice are not first and last")
		}
		if n := bytes.Count(got, []byte("[owner]")); n != 10 {
			t.Fatalf("%d owner writes arrived, want 10", n)
		}
		if len(got) != len(data)+8+7+70 {
			t.Fatalf("got %d bytes, want %d", len(got), len(data)+85)
		}
	})
}

// TestSpliceReadBlocks: a spliced source is never readable, even with data waiting when
// the splice starts (it goes to the drain instead).
func TestSpliceReadBlocks(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		r := newRig(t, nil)
		r.client.Write([]byte("queued"))
		time.Sleep(20 * time.Millisecond)
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		r.src.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := r.src.Read(make([]byte, 10)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read of a spliced source = %d, %v; want a timeout", n, err)
		}
		if got := readN(t, r.server, 6); string(got) != "queued" {
			t.Fatalf("%q", got)
		}
	})
}

func TestSpliceClose(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		// Closing the drain dissolves the splice; the source gets no error and works.
		r := newRig(t, nil)
		r.src.Splice(r.dst, SpliceOptions{Mode: mode})
		r.dst.Close()
		if err := waitSplice(t, r.src, 5*time.Second); err != nil {
			t.Fatalf("WaitSplice after the drain closed = %v, want nil", err)
		}
		r.client.Write([]byte("x"))
		if got := readN(t, r.src, 1); string(got) != "x" {
			t.Fatal(got)
		}
		// Closing the source: the drain gets no error and works.
		r2 := newRig(t, nil)
		r2.src.Splice(r2.dst, SpliceOptions{Mode: mode})
		r2.src.Close()
		if _, err := r2.dst.Write([]byte("y")); err != nil {
			t.Fatal(err)
		}
		if got := readN(t, r2.server, 1); string(got) != "y" {
			t.Fatal(got)
		}
		if err := r2.dst.WaitSplice(context.Background()); err != nil {
			t.Fatalf("drain's pending error: %v", err)
		}
	})
}

// TestSpliceConnecting splices into a socket whose connect is still in progress
// (Dialer.Connect): the data waits for the connection.
func TestSpliceConnecting(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		srvLn, _ := net.Listen("tcp", "127.0.0.1:0")
		defer srvLn.Close()
		ln, _ := Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		client, _ := net.Dial("tcp", ln.Addr().String())
		defer client.Close()
		src, _ := ln.Accept()
		defer src.Close()
		dst, err := (&Dialer{Worker: src.Worker()}).Connect("tcp", srvLn.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		client.Write([]byte("early"))
		if err := src.Splice(dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		server, _ := srvLn.Accept()
		defer server.Close()
		if got := readN(t, server, 5); string(got) != "early" {
			t.Fatal(got)
		}
		// A connect that fails ends the splice with the drain's error.
		dead, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := dead.Addr().String()
		dead.Close()
		d2, err := (&Dialer{Worker: src.Worker()}).Connect("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer d2.Close()
		if err := src.Unsplice(); err != nil {
			t.Fatal(err)
		}
		err = src.Splice(d2, SpliceOptions{Mode: mode})
		if errors.Is(err, syscall.ENOTCONN) {
			return // the connect failed already: a drain neither connected nor connecting
		}
		if err != nil {
			t.Fatal(err)
		}
		client.Write([]byte("x"))
		// OpenBSD reports EPIPE (the failed drain cannot send); its own error is kept.
		if err := waitSplice(t, src, 5*time.Second); !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("WaitSplice = %v, want EPIPE or ECONNREFUSED", err)
		}
	})
}

func TestSpliceSetupErrors(t *testing.T) {
	clean(t)
	r := newRig(t, nil)
	u1, u2 := udpPair(t, "udp", "127.0.0.1:0")
	unconnected, err := ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer unconnected.Close()
	// A listening socket, through FromConn.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	f, _ := l.(*net.TCPListener).File()
	l.Close()
	lc, _ := net.FileConn(f)
	f.Close()
	listening, err := FromConn(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer listening.Close()
	// An unconnected TCP socket.
	fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	uncTCP, err := fromFd(fd, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer uncTCP.Close()
	// A second relay whose src is already spliced to test EBUSY.
	r2 := newRig(t, nil)
	if err := r2.src.Splice(r2.dst, SpliceOptions{}); err != nil {
		t.Fatal(err)
	}
	closed := newRig(t, nil)
	closed.dst.Close()

	cases := []struct {
		name     string
		src, dst *Socket
		opt      SpliceOptions
		want     syscall.Errno
	}{
		{"kernel UDP source, before EINVAL", u1, u2, SpliceOptions{Mode: SpliceKernel, Max: -1}, syscall.EPROTONOSUPPORT},
		{"negative max", r.src, r.dst, SpliceOptions{Max: -1}, syscall.EINVAL},
		{"negative idle", r.src, r.dst, SpliceOptions{Idle: -1}, syscall.EINVAL},
		{"EINVAL before EPROTONOSUPPORT", r.src, u2, SpliceOptions{Max: -1}, syscall.EINVAL},
		{"closed drain", r.src, closed.dst, SpliceOptions{}, syscall.EBADF},
		{"TCP to UDP", r.src, u2, SpliceOptions{}, syscall.EPROTONOSUPPORT},
		{"UDP to TCP", u1, r.dst, SpliceOptions{}, syscall.EPROTONOSUPPORT},
		{"kernel mode UDP drain", r.src, u2, SpliceOptions{Mode: SpliceKernel}, syscall.EPROTONOSUPPORT},
		{"listening source", listening, r.dst, SpliceOptions{}, syscall.EOPNOTSUPP},
		{"listening drain", r.src, listening, SpliceOptions{}, syscall.EOPNOTSUPP},
		{"EOPNOTSUPP before EBUSY", listening, r2.dst, SpliceOptions{}, syscall.EOPNOTSUPP},
		{"unconnected TCP source", uncTCP, r.dst, SpliceOptions{}, syscall.ENOTCONN},
		{"unconnected TCP drain", r.src, uncTCP, SpliceOptions{}, syscall.ENOTCONN},
		{"unconnected UDP drain", u1, unconnected, SpliceOptions{}, syscall.ENOTCONN},
		{"ENOTCONN before EBUSY", uncTCP, r2.dst, SpliceOptions{}, syscall.ENOTCONN},
		{"source busy", r2.src, r.dst, SpliceOptions{}, syscall.EBUSY},
		{"drain busy", r.src, r2.dst, SpliceOptions{}, syscall.EBUSY},
	}
	for _, c := range cases {
		err := c.src.Splice(c.dst, c.opt)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Splice = %v, want %v", c.name, err, c.want)
		}
	}
	if err := r.src.Unsplice(); !errors.Is(err, syscall.EPROTO) {
		t.Errorf("Unsplice of a never-spliced socket = %v, want EPROTO", err)
	}
	// A UDP source may be unconnected.
	if err := unconnected.Splice(u2, SpliceOptions{}); err != nil {
		t.Errorf("unconnected UDP source: %v", err)
	}
	unconnected.Unsplice()
	// WaitSplice with no splice returns at once.
	if err := r.src.WaitSplice(context.Background()); err != nil {
		t.Errorf("WaitSplice with no splice = %v", err)
	}
}
