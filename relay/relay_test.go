package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The default softnet workers start on first use and live as long as the process.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/softnet-go/softnet/netq.(*Worker).loop"))
}

// testModes are the modes the in-process relay tests run in.
var testModes = []Mode{ModeAuto, ModeUser, ModeKernel}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startServer runs one relay and returns its address; the server shuts down with t.
func startServer(t *testing.T, cfg RelayConfig) (*Server, string) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.Protocol == "" {
		cfg.Protocol = "tcp"
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s := NewServer(ServerOptions{Log: testLogger(t)})
	if err := s.Apply([]RelayConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, s.Addr(cfg.Name).String()
}

// tcpServer accepts connections and runs fn on each; it stops with t.
func tcpServer(t *testing.T, fn func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fn(c.(*net.TCPConn))
			}()
		}
	}()
	return ln.Addr().String()
}

// echo copies what it reads back, then half-closes.
func echo(c *net.TCPConn) {
	io.Copy(c, c)
	c.CloseWrite()
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func forModes(t *testing.T, fn func(t *testing.T, m Mode)) {
	for _, m := range testModes {
		t.Run(string(m), func(t *testing.T) { fn(t, m) })
	}
}

func TestTCPEcho(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		target := tcpServer(t, echo)
		srv, addr := startServer(t, RelayConfig{Targets: []string{target}, Mode: m})
		data := make([]byte, 4<<20)
		rand.Read(data)
		c := dial(t, addr)
		go func() {
			c.Write(data)
			c.CloseWrite()
		}()
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("got %d bytes back, want the %d sent", len(got), len(data))
		}
		c.Close()
		waitFor(t, func() bool { return srv.ActiveFlows() == 0 })
		sn := srv.snap("test")
		if sn.accepted != 1 || sn.bytes[0] != int64(len(data)) || sn.bytes[1] != int64(len(data)) ||
			sn.endings[0]["eof"] != 1 || sn.endings[1]["eof"] != 1 {
			t.Errorf("stats: %+v", sn)
		}
	})
}

// TestTCPHalfClose checks both half-closes: the client's EOF reaches the target while
// the target still sends, and the other way round.
func TestTCPHalfClose(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		// The target reads to EOF, then answers and closes.
		target := tcpServer(t, func(c *net.TCPConn) {
			b, _ := io.ReadAll(c)
			c.Write([]byte("got " + string(b)))
		})
		_, addr := startServer(t, RelayConfig{Targets: []string{target}, Mode: m})
		c := dial(t, addr)
		c.Write([]byte("hello"))
		c.CloseWrite()
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "got hello" {
			t.Fatalf("client half-close: %q, %v", b, err)
		}

		// The target speaks first and half-closes; the client still sends afterwards.
		got := make(chan string, 1)
		target2 := tcpServer(t, func(c *net.TCPConn) {
			c.Write([]byte("banner"))
			c.CloseWrite()
			b, _ := io.ReadAll(c)
			got <- string(b)
		})
		_, addr2 := startServer(t, RelayConfig{Name: "t2", Targets: []string{target2}, Mode: m})
		c2 := dial(t, addr2)
		b, err = io.ReadAll(c2)
		if err != nil || string(b) != "banner" {
			t.Fatalf("target half-close: %q, %v", b, err)
		}
		c2.Write([]byte("still open"))
		c2.CloseWrite()
		select {
		case s := <-got:
			if s != "still open" {
				t.Fatalf("target got %q after its half-close", s)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the client's bytes after the target's half-close never arrived")
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// snap returns the snapshot of the counts of the relay called name.
func (s *Server) snap(name string) snapshot {
	s.mu.Lock()
	rec := s.records[name]
	s.mu.Unlock()
	return rec.stats.snapshot(rec.flows)
}
