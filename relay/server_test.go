package relay

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// TestReloadKeepsFlows checks that Apply keeps the flows of a relay it updates and of
// one it removes, and that new flows take the new settings.
func TestReloadKeepsFlows(t *testing.T) {
	hello := func(s string) func(*net.TCPConn) {
		return func(c *net.TCPConn) {
			c.Write([]byte(s))
			buf := make([]byte, 10)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				c.Write(buf[:n])
			}
		}
	}
	a, b := tcpServer(t, hello("a")), tcpServer(t, hello("b"))
	cfg := RelayConfig{Name: "r", Protocol: "tcp", Listen: "127.0.0.1:0", Targets: []string{a}}
	srv, addr := startServer(t, cfg)
	c := dial(t, addr)
	buf := make([]byte, 10)
	if n, _ := c.Read(buf); string(buf[:n]) != "a" {
		t.Fatalf("got %q", buf[:n])
	}
	cfg.Targets = []string{b}
	cfg.Listen = addr
	if err := srv.Apply([]RelayConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	if srv.Addr("r").String() != addr {
		t.Fatalf("listener moved to %v", srv.Addr("r"))
	}
	c2 := dial(t, addr)
	if n, _ := c2.Read(buf); string(buf[:n]) != "b" {
		t.Fatalf("new flow after reload went to %q", buf[:n])
	}
	if err := srv.Apply(nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{c, c2} {
		c.Write([]byte("ping"))
		if n, err := c.Read(buf); string(buf[:n]) != "ping" {
			t.Fatalf("flow lost by the reload: %q %v", buf[:n], err)
		}
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("removed relay still accepts")
	}
}

func TestShutdownGrace(t *testing.T) {
	target := tcpServer(t, func(c *net.TCPConn) { c.Write([]byte("x")); c.Read(make([]byte, 1)) })
	srv := NewServer(ServerOptions{Log: testLogger(t)})
	if err := srv.Apply([]RelayConfig{{Name: "r", Protocol: "tcp", Listen: "127.0.0.1:0", Targets: []string{target}}}); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr("r").String()

	// A flow that finishes within the grace period.
	c := dial(t, addr)
	c.Read(make([]byte, 1))
	go func() {
		time.Sleep(100 * time.Millisecond)
		c.Write([]byte("y"))
		io.ReadAll(c)
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 2*time.Second {
		t.Errorf("shutdown took %v", d)
	}

	// A flow that does not finish is closed when the grace period ends.
	srv = NewServer(ServerOptions{Log: testLogger(t)})
	srv.Apply([]RelayConfig{{Name: "r", Protocol: "tcp", Listen: "127.0.0.1:0", Targets: []string{target}}})
	c2 := dial(t, srv.Addr("r").String())
	c2.Read(make([]byte, 1))
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("shutdown with a stuck flow: %v", err)
	}
	if n := srv.snap("r").endings[toTarget]["closed"]; n != 1 {
		t.Errorf("closed endings: %d", n)
	}
}
