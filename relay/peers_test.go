package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Commands a peerTarget takes as the first byte of a flow.
const (
	cmdEcho  = 'E' // echo the rest, then half-close
	cmdReset = 'R' // read and echo 64 KiB, then reset (SO_LINGER 0) mid-stream
	cmdStall = 'S' // never read or write again until released
)

// peerTarget is a target whose behaviour each flow chooses with its first byte. A
// stalled flow waits for release, then reports in stalled whether the relay had closed
// its connection (a read that ends) rather than leaving it open.
type peerTarget struct {
	addr    string
	release chan struct{}
	stalled chan error
	resets  chan struct{}
	free    func() // closes release, once
}

func newPeerTarget(t *testing.T) *peerTarget {
	pt := &peerTarget{release: make(chan struct{}), stalled: make(chan error, 4), resets: make(chan struct{}, 4)}
	var once sync.Once
	pt.free = func() { once.Do(func() { close(pt.release) }) }
	pt.addr = tcpServer(t, func(c *net.TCPConn) {
		// A bound on every target connection, so that a relay socket that lingers on a
		// close (see TestPeerStalledTargetFreesSockets) cannot hang the test: when it
		// passes, the target closes with unread bytes, which resets the relay's socket.
		c.SetDeadline(time.Now().Add(targetLife))
		cmd := make([]byte, 1)
		if _, err := io.ReadFull(c, cmd); err != nil {
			return // a client that sent nothing: the relay closed it
		}
		switch cmd[0] {
		case cmdEcho:
			echo(c)
		case cmdReset:
			io.CopyN(c, c, 64<<10)
			c.SetLinger(0)
			c.Close()
			pt.resets <- struct{}{}
		case cmdStall:
			<-pt.release
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := io.Copy(io.Discard, c)
			pt.stalled <- err
		}
	})
	t.Cleanup(pt.free) // registered after tcpServer's: runs first, so its handlers can return
	return pt
}

// targetLife bounds each peerTarget connection (and so, with leakCheck's 10 s, the time
// a lingering relay socket can hold a test).
const targetLife = 4 * time.Second

// peerModes are the splicing modes the misbehaving-peer tests run in.
var peerModes = []Mode{ModeUser, ModeAuto}

// peerIdle is the relays' idle timeout in these tests: long enough that a healthy flow
// on a loaded 2-core machine never idles, short enough to keep the tests quick.
const peerIdle = 600 * time.Millisecond

// withHealthyFlow runs bad (a misbehaving peer) while a healthy 1 MiB echo flow runs
// through the same relay, and checks that the healthy flow came back byte-exact.
func withHealthyFlow(t *testing.T, addr string, bad func()) {
	t.Helper()
	done := make(chan flowOutcome, 1)
	go func() { done <- echoFlow(addr, []byte{cmdEcho}, 1<<20, 77) }()
	bad()
	o := <-done
	if !o.exact {
		t.Errorf("healthy flow beside the misbehaving peer: %d of %d bytes back (exact %v), err %v", o.got, o.sent, o.exact, o.err)
	}
}

// flowEndings waits for the relay's flows to end and returns its endings.
func flowEndings(t *testing.T, srv *Server) [2]map[string]int64 {
	t.Helper()
	waitFor(t, func() bool { return srv.ActiveFlows() == 0 })
	return srv.snap("test").endings
}

// notEOF counts the endings of both directions that are not a clean EOF.
func notEOF(e [2]map[string]int64) int64 {
	var n int64
	for dir := range 2 {
		for why, k := range e[dir] {
			if why != "eof" {
				n += k
			}
		}
	}
	return n
}

func forPeerModes(t *testing.T, fn func(t *testing.T, m Mode)) {
	for _, m := range peerModes {
		t.Run(string(m), func(t *testing.T) {
			leakCheck(t)
			fn(t, m)
		})
	}
}

// TestPeerClientResetMidStream: a client resets while bytes move both ways; its flow
// ends with a counted reason and the target's side is closed promptly.
func TestPeerClientResetMidStream(t *testing.T) {
	forPeerModes(t, func(t *testing.T, m Mode) {
		pt := newPeerTarget(t)
		srv, addr := startServer(t, RelayConfig{Targets: []string{pt.addr}, Mode: m})
		withHealthyFlow(t, addr, func() {
			c := dial(t, addr)
			c.Write([]byte{cmdEcho})
			go c.Write(make([]byte, 1<<20))
			if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
				t.Errorf("before the reset: %v", err)
			}
			c.SetLinger(0)
			c.Close()
		})
		e := flowEndings(t, srv)
		if e[toTarget]["eof"]+e[toClient]["eof"] > 2 || notEOF(e) == 0 {
			t.Errorf("endings %v: the reset flow's ending is not counted as an error", e)
		}
		t.Logf("endings %v", e)
	})
}

// TestPeerServerResetMidStream: the target resets (SO_LINGER 0) mid-stream while the
// client still sends; the client sees its flow end promptly, not a silent hang.
func TestPeerServerResetMidStream(t *testing.T) {
	forPeerModes(t, func(t *testing.T, m Mode) {
		pt := newPeerTarget(t)
		srv, addr := startServer(t, RelayConfig{Targets: []string{pt.addr}, Mode: m})
		withHealthyFlow(t, addr, func() {
			c := dial(t, addr)
			c.Write([]byte{cmdReset})
			go c.Write(make([]byte, 4<<20))
			start := time.Now()
			n, _ := io.Copy(io.Discard, c)
			if n > 64<<10 {
				t.Errorf("client got %d bytes from a target that sent 64 KiB", n)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("client's flow ended %v after the target's reset", d)
			}
			<-pt.resets
		})
		e := flowEndings(t, srv)
		if notEOF(e) == 0 {
			t.Errorf("endings %v: the target's reset is not counted", e)
		}
		t.Logf("endings %v", e)
	})
}

// TestPeerTargetStalls: a target that never reads or writes again; the client keeps
// sending. The idle timeout frees the flow (both directions end idle), the target's
// connection is closed, and the healthy flow is unharmed.
func TestPeerTargetStalls(t *testing.T) {
	forPeerModes(t, func(t *testing.T, m Mode) {
		pt := newPeerTarget(t)
		srv, addr := startServer(t, RelayConfig{Targets: []string{pt.addr}, Mode: m, Idle: peerIdle})
		withHealthyFlow(t, addr, func() {
			c := dial(t, addr)
			c.Write([]byte{cmdStall})
			werr := make(chan error, 1)
			go func() {
				// Write until the relay closes the connection: the kernel's buffers
				// (and the pipe, in auto mode) take many MiB first.
				buf := make([]byte, 64<<10)
				var err error
				for err == nil {
					_, err = c.Write(buf)
				}
				werr <- err
			}()
			_, err := io.Copy(io.Discard, c)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("the stalled flow was not freed by the idle timeout")
			}
			if err := <-werr; errors.Is(err, os.ErrDeadlineExceeded) {
				t.Error("writes into the freed flow did not fail: the relay kept the client's connection")
			}
			c.Close()
		})
		e := flowEndings(t, srv)
		if e[toTarget]["idle"] != 1 || e[toClient]["idle"] != 1 {
			t.Errorf("endings %v, want both directions of the stalled flow idle", e)
		}
		pt.free()
		if err := <-pt.stalled; errors.Is(err, os.ErrDeadlineExceeded) {
			t.Error("the relay did not close the stalled target's connection")
		}
	})
}

// TestPeerClientNeverReads: a client that sends and never reads; the echoing target
// fills the way back, both directions stop moving, and the idle timeout frees the flow.
func TestPeerClientNeverReads(t *testing.T) {
	forPeerModes(t, func(t *testing.T, m Mode) {
		pt := newPeerTarget(t)
		srv, addr := startServer(t, RelayConfig{Targets: []string{pt.addr}, Mode: m, Idle: peerIdle})
		withHealthyFlow(t, addr, func() {
			c := dial(t, addr)
			c.SetReadBuffer(64 << 10)
			c.Write([]byte{cmdEcho})
			// Write (never read) until the relay frees the flow, closes the client's
			// connection (with bytes unread: a reset) and the write fails.
			c.SetWriteDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 64<<10)
			var err error
			for err == nil {
				_, err = c.Write(buf)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Error("the relay did not close the client's connection after the idle timeout")
			}
		})
		e := flowEndings(t, srv)
		if e[toTarget]["idle"]+e[toClient]["idle"] == 0 {
			t.Errorf("endings %v, want the flow freed by idle", e)
		}
		t.Logf("endings %v", e)
	})
}

// TestPeerClientSilent: a client that connects and sends nothing (nor does the target):
// the idle timeout frees the flow.
func TestPeerClientSilent(t *testing.T) {
	forPeerModes(t, func(t *testing.T, m Mode) {
		pt := newPeerTarget(t)
		srv, addr := startServer(t, RelayConfig{Targets: []string{pt.addr}, Mode: m, Idle: peerIdle})
		withHealthyFlow(t, addr, func() {
			c := dial(t, addr)
			start := time.Now()
			_, err := c.Read(make([]byte, 1))
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Error("a silent client's flow was not freed by the idle timeout")
			} else if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("silent client read: %v", err)
			}
			if d := time.Since(start); d < peerIdle/2 {
				t.Errorf("silent flow closed after %v, before the idle timeout", d)
			}
		})
		e := flowEndings(t, srv)
		if e[toTarget]["idle"] != 1 || e[toClient]["idle"] != 1 {
			t.Errorf("endings %v, want both directions of the silent flow idle", e)
		}
	})
}

// TestPeerStalledTargetFreesSockets: a target that stalls forever (it never reads
// again, and never closes) must not keep the flow's descriptors and mbufs once the idle
// timeout has freed the flow.
//
// A closed Socket used to keep its fd and send sockbuf without bound while a peer did
// not read; the relay now resets the sockets of a flow that ended by idle or error
// (SO_LINGER 0), and a plain close drains for a bounded time (socket.SetLinger).
func TestPeerStalledTargetFreesSockets(t *testing.T) {
	leakCheck(t)
	hold := make(chan struct{})
	target := tcpServer(t, func(c *net.TCPConn) {
		c.SetReadBuffer(16 << 10)
		<-hold // never reads; closes only when the test ends
	})
	t.Cleanup(func() { close(hold) })
	srv, addr := startServer(t, RelayConfig{Targets: []string{target}, Mode: ModeUser, Idle: 300 * time.Millisecond})
	c := dial(t, addr)
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			break // the relay freed the flow
		}
	}
	c.Close()
	waitFor(t, func() bool { return srv.ActiveFlows() == 0 })
	// The target still holds its end: the relay's sockets must be gone all the same.
	end := time.Now().Add(3 * time.Second)
	for mbufsInUse() != 0 {
		if time.Now().After(end) {
			t.Fatalf("%d mbufs still held 3s after the idle timeout freed the flow of a stalled target", mbufsInUse())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
