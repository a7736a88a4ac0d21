package relay

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTCPMax(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		got := make(chan []byte, 1)
		target := tcpServer(t, func(c *net.TCPConn) {
			b, _ := io.ReadAll(c)
			got <- b
		})
		srv, addr := startServer(t, RelayConfig{Targets: []string{target}, Mode: m, Max: 1000})
		c := dial(t, addr)
		data := bytes.Repeat([]byte("x"), 5000)
		c.Write(data)
		if b := <-got; len(b) != 1000 {
			t.Fatalf("target got %d bytes, want max = 1000", len(b))
		}
		waitFor(t, func() bool { return srv.ActiveFlows() == 0 })
		if n := srv.snap("test").endings[toTarget]["max"]; n != 1 {
			t.Errorf("max endings = %d", n)
		}
	})
}

func TestTCPIdle(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		target := tcpServer(t, func(c *net.TCPConn) { io.ReadAll(c) })
		srv, addr := startServer(t, RelayConfig{Targets: []string{target}, Mode: m, Idle: 200 * time.Millisecond})
		c := dial(t, addr)
		start := time.Now()
		c.Write([]byte("x"))
		if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
			t.Errorf("idle flow closed after %v, want about 200ms", d)
		}
		waitFor(t, func() bool { return srv.ActiveFlows() == 0 })
		sn := srv.snap("test")
		if sn.endings[toTarget]["idle"] != 1 || sn.endings[toClient]["idle"] != 1 {
			t.Errorf("endings: %v", sn.endings)
		}
	})
}

// TestTCPIdleOneWay checks that idle is per direction: a download keeps its flow open
// while the client sends nothing.
func TestTCPIdleOneWay(t *testing.T) {
	target := tcpServer(t, func(c *net.TCPConn) {
		for range 8 {
			c.Write([]byte("tick"))
			time.Sleep(50 * time.Millisecond)
		}
	})
	_, addr := startServer(t, RelayConfig{Targets: []string{target}, Idle: 150 * time.Millisecond})
	c := dial(t, addr)
	b, _ := io.ReadAll(c)
	if string(b) != strings.Repeat("tick", 8) {
		t.Fatalf("got %q", b)
	}
}

func TestTCPDeadTarget(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		dead := ln.Addr().String()
		ln.Close()
		srv, addr := startServer(t, RelayConfig{Targets: []string{dead}, Mode: m})
		c := dial(t, addr)
		start := time.Now()
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read from a flow with a dead target succeeded")
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("client closed after %v", d)
		}
		sn := srv.snap("test")
		if sn.failed["connect"] != 1 || sn.tfailed[dead] != 1 {
			t.Errorf("failed %v, refused %v", sn.failed, sn.tfailed)
		}
	})
}

// TestTCPRoundRobin checks that flows take the targets in turn and skip a dead one.
func TestTCPRoundRobin(t *testing.T) {
	hello := func(s string) func(*net.TCPConn) { return func(c *net.TCPConn) { c.Write([]byte(s)) } }
	a, b := tcpServer(t, hello("a")), tcpServer(t, hello("b"))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	srv, addr := startServer(t, RelayConfig{Targets: []string{a, dead, b}})
	var seq string
	for range 4 {
		c := dial(t, addr)
		got, _ := io.ReadAll(c)
		seq += string(got)
	}
	if seq != "abba" && seq != "abab" {
		t.Errorf("targets in turn: %q", seq)
	}
	if n := srv.snap("test").tfailed[dead]; n < 1 {
		t.Errorf("dead target counted %d times", n)
	}
}

func TestTCPReset(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		target := tcpServer(t, func(c *net.TCPConn) {
			c.Read(make([]byte, 10))
			c.SetLinger(0)
			c.Close() // RST
		})
		_, addr := startServer(t, RelayConfig{Targets: []string{target}, Mode: m})
		c := dial(t, addr)
		c.Write([]byte("hi"))
		start := time.Now()
		io.ReadAll(c)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("client closed %v after the target's reset", d)
		}
	})
}

func TestProxyProtocol(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		got := make(chan string, 1)
		target := tcpServer(t, func(c *net.TCPConn) {
			b, _ := io.ReadAll(c)
			got <- string(b)
		})
		_, addr := startServer(t, RelayConfig{Targets: []string{target}, Mode: m, ProxyProtocol: ProxyV1})
		c := dial(t, addr)
		c.Write([]byte("data")) // may already wait in the relay's socket when the header goes
		c.CloseWrite()
		want := "PROXY TCP4 127.0.0.1 127.0.0.1 " + portOf(c.LocalAddr()) + " " + portOf(c.RemoteAddr()) + "\r\ndata"
		if s := <-got; s != want {
			t.Errorf("target got %q, want %q", s, want)
		}
		_, addr = startServer(t, RelayConfig{Name: "v2", Targets: []string{target}, Mode: m, ProxyProtocol: ProxyV2})
		c = dial(t, addr)
		c.Write([]byte("data"))
		c.CloseWrite()
		if s := <-got; len(s) != 28+4 || s[:12] != string(proxyV2Sig[:]) || s[28:] != "data" {
			t.Errorf("v2: target got %q", s)
		}
	})
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}
