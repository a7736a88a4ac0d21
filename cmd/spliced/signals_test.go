package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMDrains checks that SIGTERM stops accepting, lets an open flow finish, and
// exits 0; and that a flow that does not finish is cut at the end of --grace.
func TestSIGTERMDrains(t *testing.T) {
	target := tcpTarget(t, func(c *net.TCPConn) {
		c.Write([]byte("hello"))
		b, _ := io.ReadAll(c)
		c.Write(b)
	})
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode, "--grace", "10s")
	c := dial(t, d.addr())
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.waitLog("shutting down: no new flows; open flows may finish")
	if c2, err := net.DialTimeout("tcp", d.addr(), time.Second); err == nil {
		c2.Close()
		t.Error("still accepting after SIGTERM")
	}
	// The open flow still works, then ends; the daemon then exits 0 at once.
	c.Write([]byte("bye"))
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "bye" {
		t.Fatalf("open flow during the grace period: %q, %v", b, err)
	}
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("no exit after the last flow ended")
	}
	if d.code != 0 {
		t.Errorf("exit status %d after SIGTERM", d.code)
	}

	d2 := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode, "--grace", "300ms")
	c3 := dial(t, d2.addr())
	io.ReadFull(c3, buf)
	start := time.Now()
	if code := d2.signal(syscall.SIGINT, 5*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGINT", code)
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("exited %v after SIGINT, before the grace period", el)
	}
	if _, err := io.ReadAll(c3); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Errorf("flow cut at the end of the grace period: %v", err)
	}
}

// TestSIGHUPReload checks that SIGHUP applies a changed configuration and keeps the
// open flow of a changed relay.
func TestSIGHUPReload(t *testing.T) {
	speaker := func(word string) func(*net.TCPConn) {
		return func(c *net.TCPConn) {
			c.Write([]byte(word))
			io.Copy(c, c)
		}
	}
	a, b := tcpTarget(t, speaker("A")), tcpTarget(t, speaker("B"))
	ln, _ := netListen()
	listen := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(t.TempDir(), "spliced.toml")
	write := func(target string) {
		text := "[[relay]]\nname = \"r\"\nlisten = \"" + listen + "\"\ntargets = [\"" + target + "\"]\nmode = \"" + testMode + "\"\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(a)
	d := startDaemon(t, "--config", conf)
	c := dial(t, listen)
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'A' {
		t.Fatalf("first flow: %q %v", buf, err)
	}
	write(b)
	d.signal(syscall.SIGHUP, 0)
	d.waitLog("configuration reloaded")
	c2 := dial(t, listen)
	if _, err := io.ReadFull(c2, buf); err != nil || buf[0] != 'B' {
		t.Fatalf("flow after the reload: %q %v", buf, err)
	}
	c.Write([]byte("still here"))
	got := make([]byte, 10)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "still here" {
		t.Fatalf("flow opened before the reload: %q %v", got, err)
	}

	// A bad configuration is refused and the running one stays.
	os.WriteFile(conf, []byte("[[relay]]\nname = \"r\"\nlisten = \"nonsense\"\n"), 0o644)
	d.signal(syscall.SIGHUP, 0)
	d.waitLog("SIGHUP: configuration refused; the running one stays")
	c3 := dial(t, listen)
	if _, err := io.ReadFull(c3, buf); err != nil || buf[0] != 'B' {
		t.Fatalf("flow after a refused reload: %q %v", buf, err)
	}
	if code := d.signal(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}
