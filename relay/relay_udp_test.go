package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// udpEcho answers every datagram with "echo:" and the datagram; it stops with t.
func udpEcho(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().String()
}

func TestUDPFlows(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		if m == ModeKernel {
			t.Skip("kernel splicing is for TCP")
		}
		target := udpEcho(t)
		srv, addr := startServer(t, RelayConfig{Protocol: "udp", Targets: []string{target}, Mode: m, Idle: 300 * time.Millisecond})
		const clients, msgs = 3, 50
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("udp", addr)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				buf := make([]byte, 2000)
				for j := range msgs {
					msg := bytes.Repeat([]byte(fmt.Sprintf("%d.%d;", i, j)), 100)
					c.SetDeadline(time.Now().Add(5 * time.Second))
					c.Write(msg)
					n, err := c.Read(buf)
					if err != nil {
						errs <- fmt.Errorf("client %d message %d: %v", i, j, err)
						return
					}
					if !bytes.Equal(buf[:n], append([]byte("echo:"), msg...)) {
						errs <- fmt.Errorf("client %d got %q", i, buf[:min(n, 40)])
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		sn := srv.stats["test"].snapshot()
		if sn.accepted != clients {
			t.Errorf("%d flows for %d clients", sn.accepted, clients)
		}
		// Idle flows expire.
		waitFor(t, func() bool { return srv.ActiveFlows() == 0 })
		sn = srv.stats["test"].snapshot()
		if sn.endings[toTarget]["idle"] != clients || sn.bytes[toClient] != sn.bytes[toTarget]+5*clients*msgs {
			t.Errorf("after expiry: %+v", sn)
		}
	})
}

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
	cfg := RelayConfig{Name: "r", Protocol: "tcp", Listen: "127.0.0.1:0", Targets: []string{a}, Mode: ModeCopy}
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
	if err := srv.Apply([]RelayConfig{{Name: "r", Protocol: "tcp", Listen: "127.0.0.1:0", Targets: []string{target}, Mode: ModeCopy}}); err != nil {
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
	srv.Apply([]RelayConfig{{Name: "r", Protocol: "tcp", Listen: "127.0.0.1:0", Targets: []string{target}, Mode: ModeCopy}})
	c2 := dial(t, srv.Addr("r").String())
	c2.Read(make([]byte, 1))
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("shutdown with a stuck flow: %v", err)
	}
	if n := srv.stats["r"].snapshot().endings[toTarget]["closed"]; n != 1 {
		t.Errorf("closed endings: %d", n)
	}
}
