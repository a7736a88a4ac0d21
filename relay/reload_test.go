package relay

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// relaysInMetrics returns the relay labels that /metrics' collector reports.
func relaysInMetrics(t *testing.T, srv *Server) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(srv))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "relay" {
					out[l.GetValue()] = true
				}
			}
		}
	}
	return out
}

// TestReloadRenameKeepsListener: a relay renamed on reload, its address unchanged, keeps
// its listener — no client is refused or reset while clients connect without a pause —
// and its open flows, now counted under the new name; the old name leaves /metrics,
// and so does a removed relay once its last flow has ended.
func TestReloadRenameKeepsListener(t *testing.T) {
	target := tcpServer(t, func(c *net.TCPConn) { io.Copy(c, c); c.CloseWrite() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := NewServer(ServerOptions{Log: testLogger(t)})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	relay := func(name, listen string) RelayConfig {
		return RelayConfig{Name: name, Protocol: "tcp", Listen: listen, Targets: []string{target}}
	}
	if err := srv.Apply([]RelayConfig{relay("a", addr)}); err != nil {
		t.Fatal(err)
	}
	echo := func(c net.Conn, msg string) error {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		b := make([]byte, len(msg))
		_, err := io.ReadFull(c, b)
		return err
	}
	open, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := echo(open, "before"); err != nil {
		t.Fatal(err)
	}

	// Clients connect back to back across the reload.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", addr)
				if err == nil {
					err = echo(c, "x")
					c.Close()
				}
				if err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := srv.Apply([]RelayConfig{relay("b", addr)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("across the rename: %d clients relayed, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Errorf("%d clients failed across the rename (%d relayed), want none", failed.Load(), ok.Load())
	}
	if srv.Addr("a") != nil || srv.Addr("b") == nil || srv.Addr("b").String() != addr {
		t.Fatalf("after the rename: a at %v, b at %v; want b alone, at %s", srv.Addr("a"), srv.Addr("b"), addr)
	}
	if err := echo(open, "after"); err != nil {
		t.Fatalf("the flow open across the rename: %v", err)
	}
	if got := relaysInMetrics(t, srv); got["a"] || !got["b"] {
		t.Errorf("relays in /metrics after the rename: %v, want b only", got)
	}
	// The clients' flows end as their sockets close; the one opened under a stays.
	waitFor(t, func() bool { return srv.snap("b").active == 1 })

	// b goes away; its flow lives on, and its series with it, until the flow ends.
	other, _ := net.Listen("tcp", "127.0.0.1:0")
	otherAddr := other.Addr().String()
	other.Close()
	if err := srv.Apply([]RelayConfig{relay("c", otherAddr)}); err != nil {
		t.Fatal(err)
	}
	if err := echo(open, "still"); err != nil {
		t.Fatalf("the flow of a removed relay: %v", err)
	}
	if got := relaysInMetrics(t, srv); !got["b"] || !got["c"] {
		t.Errorf("relays in /metrics while b's flow is open: %v, want b and c", got)
	}
	open.Close()
	waitFor(t, func() bool { return !relaysInMetrics(t, srv)["b"] })
}
