package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestNoGoroutinePerFlow: a TCP flow is accepted, connected and spliced on the workers,
// so 1,000 open flows cost no goroutine of their own.
func TestNoGoroutinePerFlow(t *testing.T) {
	const flows = 1000
	// A target that keeps its connections without a goroutine each.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, flows)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	t.Cleanup(func() {
		for len(held) > 0 {
			(<-held).Close()
		}
	})
	// Every client is 127.0.0.1: no per-source cap.
	srv, addr := startServer(t, RelayConfig{Targets: []string{ln.Addr().String()}, MaxFlowsPerSource: -1})
	runtime.GC()
	before := runtime.NumGoroutine()
	clients := make([]net.Conn, 0, flows)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range flows {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	waitFor(t, func() bool { return len(held) == flows && srv.ActiveFlows() == flows })
	if d := runtime.NumGoroutine() - before; d > 10 {
		t.Errorf("%d goroutines more with %d open flows, want none per flow", d, flows)
	}
	// And they relay: a few bytes through each.
	for _, c := range clients {
		c.Write([]byte("ping"))
	}
	for range flows {
		c := <-held
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
			t.Fatalf("through a flow: %q, %v", b, err)
		}
	}
}

// blackHole returns the address of a listener whose accept queue is full, so the
// kernel drops the SYNs of further connects: a target that neither accepts nor refuses.
func blackHole(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break // the queue is full: this SYN was dropped
		}
		t.Cleanup(func() { c.Close() })
		if i > 16 {
			t.Skip("the kernel keeps accepting into a full queue")
		}
	}
	return addr
}

// TestConnectTimeoutSkipsTargets: a target that black-holes is given up after
// connect_timeout and one that refuses at once, both on the worker, and the flow goes to
// the next target; both are counted.
func TestConnectTimeoutSkipsTargets(t *testing.T) {
	hole := blackHole(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refusing := ln.Addr().String()
	ln.Close()
	good := tcpServer(t, echo)
	const timeout = 300 * time.Millisecond
	srv, addr := startServer(t, RelayConfig{Targets: []string{hole, refusing, good}, ConnectTimeout: timeout})
	start := time.Now()
	c := dial(t, addr)
	c.Write([]byte("hello"))
	b := make([]byte, 5)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "hello" {
		t.Fatalf("echo through the relay: %q, %v", b, err)
	}
	if d := time.Since(start); d < timeout || d > timeout+2*time.Second {
		t.Errorf("the flow started after %v, want a little over the connect timeout %v", d, timeout)
	}
	sn := srv.snap("test")
	if sn.tfailed[hole] != 1 || sn.tfailed[refusing] != 1 || sn.tfailed[good] != 0 {
		t.Errorf("target failures %v, want one for the black hole and one for the refusing target", sn.tfailed)
	}
}

// TestNoTargetReachable: with every target down the client is closed (reset) and the
// flow counted as failed, promptly.
func TestNoTargetReachable(t *testing.T) {
	hole := blackHole(t)
	srv, addr := startServer(t, RelayConfig{Targets: []string{hole}, ConnectTimeout: 100 * time.Millisecond})
	c := dial(t, addr)
	start := time.Now()
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("read: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("client closed after %v", d)
	}
	waitFor(t, func() bool { return srv.snap("test").failed["connect"] == 1 && srv.ActiveFlows() == 0 })
}

// TestShutdownDuringConnect: a shutdown whose grace runs out closes flows still
// connecting, and returns.
func TestShutdownDuringConnect(t *testing.T) {
	hole := blackHole(t)
	s := NewServer(ServerOptions{Log: testLogger(t)})
	if err := s.Apply([]RelayConfig{{Name: "test", Listen: "127.0.0.1:0", Targets: []string{hole}, ConnectTimeout: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Addr("test").String())
	waitFor(t, func() bool { return s.ActiveFlows() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Shutdown = nil with a flow still connecting")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown hung on a flow still connecting")
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, unix.ECONNRESET) {
		t.Errorf("client: %v", err)
	}
}

// TestTargetNamesResolvedOnce: a host name target is looked up when the relay starts,
// not per flow; a refresh that fails keeps the last answer.
func TestTargetNamesResolvedOnce(t *testing.T) {
	good := tcpServer(t, echo)
	_, port, _ := net.SplitHostPort(good)
	var lookups atomic.Int32
	s := NewServer(ServerOptions{Log: testLogger(t)})
	s.lookup = func(_ context.Context, _, host string) ([]netip.Addr, error) {
		lookups.Add(1)
		if host != "backend.test" {
			return nil, errors.New("no such host")
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	if err := s.Apply([]RelayConfig{{Name: "test", Listen: "127.0.0.1:0", Targets: []string{"backend.test:" + port}}}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		c := dial(t, s.Addr("test").String())
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if n := lookups.Load(); n != 1 {
		t.Errorf("%d lookups for 20 flows, want 1 (at start)", n)
	}

	tg := s.running["test"].settings().targets[0]
	fail := func(context.Context, string, string) ([]netip.Addr, error) { return nil, errors.New("DNS down") }
	if err := tg.resolve(fail); err == nil {
		t.Error("a failing lookup reported no error")
	}
	if got := tg.addr().String(); got != "127.0.0.1:"+port {
		t.Errorf("after a failed refresh the target is %s, want the last answer", got)
	}
	if err := s.Apply([]RelayConfig{{Name: "other", Listen: "127.0.0.1:0", Targets: []string{"nowhere.test:1"}}}); err == nil {
		t.Error("a relay whose target does not resolve started")
	}
}
