package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// metrics fetches /metrics and parses it as Prometheus text.
func (d *daemon) metrics() map[string]*dto.MetricFamily {
	d.t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(d.get("/metrics")))
	if err != nil {
		d.t.Fatalf("/metrics does not parse: %v", err)
	}
	return mf
}

// metric returns the value of the sample of family name whose labels include labels
// ("k=v" pairs), or -1.
func metric(mf map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := mf[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	return -1
}

// TestTCPRelay sends data through a TCP relay both ways, checks it byte-exact, and
// checks the metrics against what was sent.
func TestTCPRelay(t *testing.T) {
	for _, mode := range []string{"auto", "user", "kernel"} {
		t.Run(mode, func(t *testing.T) { testTCPRelay(t, mode) })
	}
}

func testTCPRelay(t *testing.T, mode string) {
	target := tcpTarget(t, echo)
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", mode)
	const flows = 3
	data := make([]byte, 2<<20)
	rand.Read(data)
	for range flows {
		c := dial(t, d.addr())
		go func() {
			c.Write(data)
			c.CloseWrite()
		}()
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("echo through the relay: %d bytes back of %d, %v", len(got), len(data), err)
		}
		c.Close()
	}
	relay := "relay=tcp-127.0.0.1:0"
	var mf = d.metrics()
	for end := time.Now().Add(5 * time.Second); metric(mf, "spliced_flows_active", relay) != 0 && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
		mf = d.metrics()
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"spliced_flows_accepted_total", nil, flows},
		{"spliced_flows_active", nil, 0},
		{"spliced_bytes_total", []string{"direction=to_target"}, flows * float64(len(data))},
		{"spliced_bytes_total", []string{"direction=to_client"}, flows * float64(len(data))},
		{"spliced_splice_endings_total", []string{"direction=to_target", "reason=eof"}, flows},
		{"spliced_splice_endings_total", []string{"direction=to_client", "reason=eof"}, flows},
	} {
		if got := metric(mf, c.name, append(c.labels, relay)...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestHalfClose checks honest half-close both ways through the daemon.
func TestHalfClose(t *testing.T) {
	// The client shuts down its write side first; the target answers after EOF.
	target := tcpTarget(t, func(c *net.TCPConn) {
		b, _ := io.ReadAll(c)
		c.Write([]byte("got " + string(b)))
	})
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode)
	c := dial(t, d.addr())
	c.Write([]byte("question"))
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "got question" {
		t.Fatalf("after the client's half-close: %q, %v", b, err)
	}

	// The target shuts down first; the client goes on sending.
	got := make(chan string, 1)
	target2 := tcpTarget(t, func(c *net.TCPConn) {
		c.Write([]byte("banner"))
		c.CloseWrite()
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	d2 := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target2, "--mode", testMode)
	c2 := dial(t, d2.addr())
	if b, err := io.ReadAll(c2); err != nil || string(b) != "banner" {
		t.Fatalf("target's half-close: %q, %v", b, err)
	}
	c2.Write([]byte("late words"))
	c2.CloseWrite()
	select {
	case s := <-got:
		if s != "late words" {
			t.Fatalf("target got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("bytes sent after the target's half-close never arrived")
	}
}

func TestMaxAndIdle(t *testing.T) {
	got := make(chan int, 1)
	target := tcpTarget(t, func(c *net.TCPConn) {
		b, _ := io.ReadAll(c)
		got <- len(b)
	})
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode, "--max", "1KiB")
	c := dial(t, d.addr())
	c.Write(make([]byte, 10000))
	select {
	case n := <-got:
		if n != 1024 {
			t.Errorf("target got %d bytes with --max 1KiB", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("flow not ended by --max")
	}
	mf := d.metrics()
	if n := metric(mf, "spliced_splice_endings_total", "direction=to_target", "reason=max"); n != 1 {
		t.Errorf("max endings: %v", n)
	}

	target2 := tcpTarget(t, func(c *net.TCPConn) { io.ReadAll(c) })
	d2 := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target2, "--mode", testMode, "--idle", "300ms")
	c2 := dial(t, d2.addr())
	c2.Write([]byte("x"))
	start := time.Now()
	if _, err := io.ReadAll(c2); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 250*time.Millisecond || el > 3*time.Second {
		t.Errorf("idle flow ended after %v with --idle 300ms", el)
	}
}

func TestDeadTarget(t *testing.T) {
	ln, _ := netListen()
	dead := ln.Addr().String()
	ln.Close()
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", dead, "--mode", testMode)
	c := dial(t, d.addr())
	start := time.Now()
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a flow whose target is dead", n)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("client closed %v after connecting", el)
	}
	mf := d.metrics()
	if n := metric(mf, "spliced_flows_failed_total", "reason=connect"); n != 1 {
		t.Errorf("failed flows: %v", n)
	}
	if n := metric(mf, "spliced_target_failures_total", "target="+dead); n != 1 {
		t.Errorf("target failures: %v", n)
	}
}

func TestUDPRelay(t *testing.T) {
	for _, mode := range []string{"auto", "user"} {
		t.Run(mode, func(t *testing.T) { testUDPRelay(t, mode) })
	}
}

func testUDPRelay(t *testing.T, mode string) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", pc.LocalAddr().String(), "--udp", "--mode", mode, "--idle", "2s")
	var sent int
	for i := range 2 {
		c, err := net.Dial("udp", d.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 65536)
		for j, size := range []int{0, 1, 1200, 9000, 60000} {
			msg := make([]byte, size)
			rand.Read(msg)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write(msg)
			n, err := c.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], msg) {
				t.Fatalf("client %d datagram %d (%d bytes): got %d bytes, %v", i, j, size, n, err)
			}
			sent += size
		}
	}
	mf := d.metrics()
	if n := metric(mf, "spliced_flows_accepted_total"); n != 2 {
		t.Errorf("%v UDP flows for 2 clients", n)
	}
	if n := metric(mf, "spliced_bytes_total", "direction=to_client"); n != float64(sent) {
		t.Errorf("bytes to clients: %v, want %d", n, sent)
	}
}
