package main

import (
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestNetnsKeepaliveFindsBlackHole: a target that goes dark — every packet to it dropped
// by netfilter, so neither a reset nor an ICMP error ever comes back — under a flow
// whose client is silent too, with no idle timeout: TCP keepalive on the relay's target
// socket (the test's --keepalive 2s: 4 probes 1 s apart) finds it gone, and the relay
// resets the client, counts the ending as a timeout, and holds nothing.
func TestNetnsKeepaliveFindsBlackHole(t *testing.T) {
	nsCheckLeaks(t)
	tp := newNsTopo(t)
	srv := startNsEchoServer(t, tp.s, nsServerTCP)
	d := startNsDaemon(t, tp.r, "--listen", nsRelayTCP, "--to", nsServerTCP, "--mode", testMode,
		"--idle", "0", "--keepalive", "2s")
	c := nsDialTCP(t, tp.c, nsRelayTCP)
	ping := func() {
		msg := nsRandom(64)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
			t.Fatalf("echo before the black hole: %v", err)
		}
	}
	ping()
	if srv.connections() != 1 {
		t.Fatalf("%d connections at the server, want 1", srv.connections())
	}
	drop := nsRandomDrop(t, "", tp.s, "ip protocol tcp", []string{"-p", "tcp"}, 100)
	dark := time.Now()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := c.Read(make([]byte, 1))
	found := time.Since(dark)
	t.Logf("target black-holed (%s): the relay reset the client %v later (%v); %d packets dropped",
		drop.tool, found.Round(time.Millisecond), err, drop.drops(t))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the flow to a black-holed target is still open 30 s on, with --keepalive 2s")
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client's read: %v, want a reset", err)
	}
	if found < 2*time.Second {
		t.Errorf("found after %v, before the keepalive idle time (2s)", found)
	}
	if drop.drops(t) == 0 {
		t.Error("no keepalive probe was dropped")
	}
	mf := d.waitIdle(5 * time.Second)
	if e := nsEndings(mf); e["to_client/timeout"] != 1 {
		t.Errorf("splice endings %v, want to_client/timeout 1 (the target's keepalive)", e)
	}
}
