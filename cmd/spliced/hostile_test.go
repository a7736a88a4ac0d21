package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The hostile-client tests: what one client address can do to a daemon with its
// defaults, and the caps, timers and checks that stop it.

const msgRefusing = "refusing new clients over a cap (logged once until the refusals stop)"

// dialFrom connects to addr from the local address src (a loopback address: 127.0.0.0/8
// is all this host's).
func dialFrom(src, addr string) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn), nil
}

// holdFrom opens n connections from src to addr and closes them when t ends. It
// returns those whose connect succeeded, and the number reset before the connect
// returned (a relay that refuses at once may beat the dialer's check of the socket).
func holdFrom(t *testing.T, src, addr string, n int) ([]*net.TCPConn, int) {
	t.Helper()
	cs := make([]*net.TCPConn, 0, n)
	reset := 0
	for i := range n {
		c, err := dialFrom(src, addr)
		if errors.Is(err, syscall.ECONNRESET) {
			reset++
			continue
		}
		if err != nil {
			t.Fatalf("connection %d from %s: %v", i+1, src, err)
		}
		cs = append(cs, c)
	}
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	return cs, reset
}

// pingFrom sends 64 bytes from src through the echo relay at addr and returns how long
// the connect and the round trip took.
func pingFrom(src, addr string) (time.Duration, error) {
	start := time.Now()
	c, err := dialFrom(src, addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	msg := []byte(strings.Repeat("p", 64))
	if _, err := c.Write(msg); err != nil {
		return 0, err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return 0, err
	}
	if string(got) != string(msg) {
		return 0, fmt.Errorf("echo %q", got)
	}
	return time.Since(start), nil
}

// waitMetric waits (at most 10 s) until /metrics has the sample name{labels} at want.
func (d *daemon) waitMetric(want float64, name string, labels ...string) {
	d.t.Helper()
	var got float64
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got = metric(d.metrics(), name, labels...); got == want {
			return
		}
	}
	d.t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
}

// TestPerSourceCap: one source address at its max_flows_per_source has its further
// clients reset at once, counted and logged once; a client of another source is still
// relayed within 100 ms, /metrics still answers, and a flow the capped source closes
// makes room for exactly one more.
func TestPerSourceCap(t *testing.T) {
	target := tcpTarget(t, echo)
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode, "--max-flows-per-source", "50")
	addr := d.addr()
	held, refused := holdFrom(t, "127.0.0.1", addr, 80)
	d.waitMetric(30, "spliced_flows_refused_total", "reason=max_flows_per_source")
	d.waitMetric(50, "spliced_flows_active")
	// The refused ones were reset, without a byte.
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			refused++
		}
	}
	if refused != 30 {
		t.Errorf("%d of the 80 connections were closed by the relay, want 30", refused)
	}
	el, err := pingFrom("127.0.0.2", addr)
	if err != nil {
		t.Fatalf("a client of another source, with 127.0.0.1 at its cap: %v", err)
	}
	t.Logf("127.0.0.1 at its cap of 50 (30 refused): a client of 127.0.0.2 connected and echoed 64 B in %v", el)
	if el > 100*time.Millisecond {
		t.Errorf("a client of another source took %v, want under 100 ms", el)
	}
	if n := metric(d.metrics(), "spliced_flows_refused_total", "reason=max_flows"); n != 0 {
		t.Errorf("refused for max_flows: %v, want 0", n)
	}
	if n := d.countLogs(msgRefusing); n != 1 {
		t.Errorf("%d log records of the refusals, want 1 for the spell", n)
	}
	// Ten of the held flows end: exactly ten more of 127.0.0.1 get in, the eleventh not.
	closed := 0
	for _, c := range held {
		if closed < 10 {
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
				c.Close()
				closed++
			}
		}
	}
	d.waitMetric(40, "spliced_flows_active")
	holdFrom(t, "127.0.0.1", addr, 11)
	d.waitMetric(31, "spliced_flows_refused_total", "reason=max_flows_per_source")
	d.waitMetric(50, "spliced_flows_active")
}

// TestMaxFlows: the daemon-wide max_flows refuses every source once reached.
func TestMaxFlows(t *testing.T) {
	target := tcpTarget(t, echo)
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode, "--max-flows", "20")
	addr := d.addr()
	holdFrom(t, "127.0.0.1", addr, 15)
	holdFrom(t, "127.0.0.2", addr, 10)
	d.waitMetric(5, "spliced_flows_refused_total", "reason=max_flows")
	d.waitMetric(20, "spliced_flows_active")
	if _, err := pingFrom("127.0.0.3", addr); err == nil {
		t.Error("a third source was relayed beyond max_flows")
	}
	d.waitMetric(6, "spliced_flows_refused_total", "reason=max_flows")
}

// TestNewFlowsPerSource: new_flows_per_source lets a burst of its count through and
// refuses the rest of the period, for that source only.
func TestNewFlowsPerSource(t *testing.T) {
	target := tcpTarget(t, echo)
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode, "--new-flows-per-source", "10/m")
	addr := d.addr()
	ok := 0
	for range 15 {
		if _, err := pingFrom("127.0.0.1", addr); err == nil {
			ok++
		}
	}
	if ok != 10 {
		t.Errorf("%d of 15 quick connections relayed at 10/m, want 10", ok)
	}
	if _, err := pingFrom("127.0.0.2", addr); err != nil {
		t.Errorf("another source, under its own rate: %v", err)
	}
	d.waitMetric(5, "spliced_flows_refused_total", "reason=new_flows_per_source")
}

// TestIdleClosesSilentConnections: 1,000 connections that send nothing are all closed
// by the idle timeout (the test's 1s; the default, 10m, is in --help), each direction
// counted as ended by idle, none left open.
func TestIdleClosesSilentConnections(t *testing.T) {
	if _, out, _ := spliced(t, "run", "--help"); !strings.Contains(out, "default 10m (TCP)") {
		t.Errorf("--help does not show the 10m idle default:\n%s", out)
	}
	const n = 1000
	target := tcpTarget(t, echo)
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode, "--idle", "1s", "--max-flows-per-source", "0")
	held, reset := holdFrom(t, "127.0.0.1", d.addr(), n)
	if reset != 0 {
		t.Fatalf("%d of %d connections reset as they connected", reset, n)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open, late int
	for _, c := range held {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, err := c.Read(make([]byte, 1))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				open++
			case time.Since(start) > 10*time.Second:
				late++
			}
		})
	}
	wg.Wait()
	t.Logf("%d silent connections closed by --idle 1s within %v", n-open, time.Since(start).Round(time.Millisecond))
	if open != 0 || late != 0 {
		t.Fatalf("%d connections still open 15 s on, %d closed after 10 s", open, late)
	}
	d.waitMetric(0, "spliced_flows_active")
	for _, dir := range []string{"to_target", "to_client"} {
		d.waitMetric(n, "spliced_splice_endings_total", "direction="+dir, "reason=idle")
	}
}

// TestSecondDaemonRefused: a second daemon on an address a first one listens on exits
// 1 naming the address, unless both ask to share it with --reuse-port.
func TestSecondDaemonRefused(t *testing.T) {
	target := tcpTarget(t, echo)
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode)
	addr := d.addr()
	code, _, errs := spliced(t, "run", "--listen", addr, "--to", target, "--admin", "off")
	if code != 1 || !strings.Contains(errs, addr) || !strings.Contains(errs, "--reuse-port") {
		t.Fatalf("second daemon on %s: exit %d, stderr %q; want 1 naming the address and --reuse-port", addr, code, errs)
	}
	if _, err := pingFrom("127.0.0.1", addr); err != nil {
		t.Fatalf("the first daemon after the second was refused: %v", err)
	}
	d.signal(syscall.SIGTERM, 10*time.Second)

	// Both asking to share: the swap a zero-downtime upgrade makes.
	a := startDaemon(t, "--listen", addr, "--to", target, "--mode", testMode, "--reuse-port")
	b := startDaemon(t, "--listen", addr, "--to", target, "--mode", testMode, "--reuse-port")
	if a.addr() != b.addr() {
		t.Fatalf("two daemons with --reuse-port listen on %s and %s", a.addr(), b.addr())
	}
	a.signal(syscall.SIGTERM, 10*time.Second)
	if _, err := pingFrom("127.0.0.1", addr); err != nil {
		t.Fatalf("after the first of two sharing daemons stopped: %v", err)
	}
}

// TestSecondSignalResets: a second SIGTERM during the grace period resets the open
// flows at once and exits 0, and says so.
func TestSecondSignalResets(t *testing.T) {
	target := tcpTarget(t, echo)
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode, "--grace", "1m")
	c := dial(t, d.addr())
	c.Write([]byte("hi"))
	io.ReadFull(c, make([]byte, 2))
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.waitLog("shutting down: no new flows; open flows may finish")
	start := time.Now()
	if code := d.signal(syscall.SIGTERM, 5*time.Second); code != 0 {
		t.Errorf("exit status %d after the second SIGTERM", code)
	}
	t.Logf("exited %v after the second SIGTERM, with a grace of 1m", time.Since(start).Round(time.Millisecond))
	d.waitLog("second signal: resetting the open flows now")
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the open flow after the second signal: %v, want a reset", err)
	}
}

// TestLoopsRefused: a relay whose target leads back to itself, directly or through
// another relay, or that listens on the admin address, is refused with exit 2.
func TestLoopsRefused(t *testing.T) {
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	free := ln.Addr().String()
	ln.Close()
	code, _, errs := spliced(t, "run", "--listen", free, "--to", free)
	if code != 2 || !strings.Contains(errs, "leads back to this relay's own listen address") {
		t.Errorf("target = listen: exit %d, stderr %q", code, errs)
	}
	code, _, errs = spliced(t, "run", "--listen", free, "--to", "127.0.0.1:9", "--admin", free)
	if code != 2 || !strings.Contains(errs, "is the admin endpoint's address") {
		t.Errorf("listen = admin: exit %d, stderr %q", code, errs)
	}
	cfg := filepath.Join(t.TempDir(), "ring.toml")
	text := "[[relay]]\nname = \"x\"\nlisten = \"127.0.0.1:7101\"\ntargets = [\"127.0.0.1:7102\"]\n" +
		"[[relay]]\nname = \"y\"\nlisten = \"127.0.0.1:7102\"\ntargets = [\"127.0.0.1:7101\"]\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = spliced(t, "run", "--config", cfg)
	if code != 2 || !strings.Contains(errs, `relay "x"`) || !strings.Contains(errs, "leads back to this relay through") {
		t.Errorf("x → y → x: exit %d, stderr %q", code, errs)
	}
}
