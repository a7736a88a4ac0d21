package socket

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/softnet-go/softnet/mbuf"
)

// stuffedSocket returns a socket whose peer (a net.TCPConn) never reads, with data left
// in its send sockbuf after the kernel's buffers filled.
func stuffedSocket(t *testing.T) (*Socket, *net.TCPConn) {
	t.Helper()
	ln, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	peer := nc.(*net.TCPConn)
	peer.SetReadBuffer(4 << 10)
	so, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { so.Close() })
	so.SetWriteBuffer(64 << 10)
	so.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 64<<10)
	for {
		if _, err := so.Write(buf); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write: %v", err)
			}
			break
		}
	}
	// The kernel is full: queue a chain in the send sockbuf behind it.
	m, err := mbuf.DevGet(buf[:32<<10], 0, mbuf.DontWait)
	if err != nil {
		t.Fatal(err)
	}
	if err := so.Send(m); err != nil {
		t.Fatalf("send: %v", err)
	}
	so.snd.mu.Lock()
	cc := so.snd.cc
	so.snd.mu.Unlock()
	if cc == 0 {
		t.Fatal("the send sockbuf is empty: the test needs data the peer will not take")
	}
	return so, peer
}

// waitDestroyed waits up to d for a closed socket to give back its fd and mbufs.
func waitDestroyed(t *testing.T, so *Socket, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for so.state.Load()&ssDestroyed == 0 {
		if time.Since(start) > d {
			t.Fatalf("closed socket still holds its fd and send sockbuf after %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestCloseLingerBounded: a closed socket whose peer never reads keeps its data only for
// the linger time, then resets the connection and gives back the fd and the mbufs.
func TestCloseLingerBounded(t *testing.T) {
	clean(t)
	so, peer := stuffedSocket(t)
	if err := so.SetLinger(1); err != nil {
		t.Fatal(err)
	}
	so.Close()
	time.Sleep(300 * time.Millisecond)
	if so.state.Load()&ssDestroyed != 0 {
		t.Fatal("destroyed before the linger time, with data still queued")
	}
	took := waitDestroyed(t, so, 5*time.Second)
	t.Logf("destroyed %v after the check, linger 1 s", took+300*time.Millisecond)
	// The peer reads what reached its kernel, then the reset.
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, peer)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer read: %v, want ECONNRESET", err)
	}
}

// TestCloseLingerZeroAborts: SetLinger(0) discards unsent data and resets at Close.
func TestCloseLingerZeroAborts(t *testing.T) {
	clean(t)
	so, peer := stuffedSocket(t)
	if err := so.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	so.Close()
	waitDestroyed(t, so, 2*time.Second)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, peer)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer read: %v, want ECONNRESET", err)
	}
}

// TestCloseDrainsByDefault: with the default linger a reading peer gets every byte and
// EOF after Close.
func TestCloseDrainsByDefault(t *testing.T) {
	clean(t)
	so, peer := stuffedSocket(t)
	so.snd.mu.Lock()
	queued := so.snd.cc
	so.snd.mu.Unlock()
	so.Close()
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, peer)
	if err != nil {
		t.Fatalf("peer read after %d bytes: %v", n, err)
	}
	if n < int64(queued) {
		t.Fatalf("peer got %d bytes, fewer than the %d still queued at Close", n, queued)
	}
	waitDestroyed(t, so, 2*time.Second)
}
