package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAccessLog: one line per flow at info level as it ends, with the addresses as
// strings, the bytes each way and how it ended; none with --access-log=false.
func TestAccessLog(t *testing.T) {
	target := tcpTarget(t, echo)
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode, "--log-level", "info")
	c := dial(t, d.addr())
	msg := strings.Repeat("a", 1000)
	c.Write([]byte(msg))
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != msg {
		t.Fatalf("echo: %d bytes, %v", len(b), err)
	}
	rec := d.waitLog("flow")
	want := map[string]any{"client": c.LocalAddr().String(), "target": target, "bytes_to_target": 1000.0,
		"bytes_to_client": 1000.0, "end": "eof", "level": "INFO"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("access log %s = %v, want %v (%v)", k, rec[k], v, rec)
		}
	}
	if _, err := time.ParseDuration(rec["duration"].(string)); err != nil {
		t.Errorf("access log duration %v: %v", rec["duration"], err)
	}

	// A client that resets: end "reset". A target that refuses: end "refused", no target.
	c = dial(t, d.addr())
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	c.SetLinger(0)
	c.Close()
	d2 := startDaemon(t, "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--mode", testMode)
	c = dial(t, d2.addr())
	io.ReadAll(c)
	logEnds := func(d *daemon, n int) []string {
		var ends []string
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && len(ends) < n; time.Sleep(20 * time.Millisecond) {
			ends = ends[:0]
			d.mu.Lock()
			for _, r := range d.logs {
				if r["msg"] == "flow" {
					ends = append(ends, r["end"].(string)+"@"+r["target"].(string))
				}
			}
			d.mu.Unlock()
		}
		return ends
	}
	if ends := logEnds(d, 2); len(ends) != 2 || ends[1] != "reset@"+target {
		t.Errorf("access log ends %v, want the second reset@%s", ends, target)
	}
	if ends := logEnds(d2, 1); len(ends) != 1 || ends[0] != "refused@-" {
		t.Errorf("access log ends %v, want [refused@-]", ends)
	}

	d3 := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode, "--access-log=false")
	c = dial(t, d3.addr())
	c.Write([]byte("y"))
	c.CloseWrite()
	io.ReadAll(c)
	d3.waitMetric(0, "spliced_flows_active")
	if n := d3.countLogs("flow"); n != 0 {
		t.Errorf("%d access-log lines with --access-log=false", n)
	}
}

// TestHealthDuringDrain: /healthz and /readyz answer 200 while serving and 503 once a
// shutdown has begun, while open flows drain.
func TestHealthDuringDrain(t *testing.T) {
	target := tcpTarget(t, echo)
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", testMode, "--grace", "10s")
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := d.status(p); code != 200 {
			t.Errorf("%s while serving: %d %q", p, code, body)
		}
	}
	c := dial(t, d.addr())
	c.Write([]byte("hi"))
	io.ReadFull(c, make([]byte, 2))
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.waitLog("shutting down: no new flows; open flows may finish")
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := d.status(p); code != 503 {
			t.Errorf("%s while draining: %d %q, want 503", p, code, body)
		}
	}
	c.Close()
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("no exit once the last flow ended")
	}
}

// TestCheckCommand: spliced check takes a good file (exit 0, its relays listed) and
// refuses a bad one (exit 2, naming the line and key).
func TestCheckCommand(t *testing.T) {
	code, out, errs := spliced(t, "check", "--config", filepath.Join("..", "..", "contrib", "spliced.toml"))
	if code != 0 || !strings.HasPrefix(out, "ok: ") || !strings.Contains(out, "web: tcp 127.0.0.1:8080") {
		t.Errorf("check of the example: exit %d, %q %q", code, out, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[[relay]]\nname = \"x\"\nlisten = \"127.0.0.1:7001\"\ntargets = [\"127.0.0.1:7001\"]\n"), 0o644)
	code, _, errs = spliced(t, "check", "--config", bad)
	if code != 2 || !strings.Contains(errs, "bad.toml:4") || !strings.Contains(errs, "leads back") {
		t.Errorf("check of a looping file: exit %d, %q", code, errs)
	}
}

// TestSystemdNotify: with $NOTIFY_SOCKET, the daemon says READY=1 once it listens;
// a SIGHUP with a file that is refused gives RELOADING=1 (with MONOTONIC_USEC), then
// READY=1 and a STATUS= naming the failure, and spliced_config_reload_success 0; a
// good reload sets it back to 1; SIGTERM says STOPPING=1.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "notify")
	ns, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	msgs := make(chan string, 16)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ns.Read(b)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(b[:n])
		}
	}()
	next := func(want string) string {
		t.Helper()
		select {
		case m := <-msgs:
			if !strings.Contains(m, want) {
				t.Fatalf("notification %q, want %q in it", m, want)
			}
			return m
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification with %q", want)
		}
		return ""
	}
	target := tcpTarget(t, echo)
	cfg := filepath.Join(dir, "spliced.toml")
	good := "[[relay]]\nname = \"r\"\nlisten = \"127.0.0.1:0\"\ntargets = [\"" + target + "\"]\n"
	os.WriteFile(cfg, []byte(good), 0o644)
	cmd := exec.Command(binary, "run", "--config", cfg, "--log-format", "json", "--admin", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sockPath)
	d := launch(t, cmd, 10*time.Second)
	next("READY=1")

	os.WriteFile(cfg, []byte(good+"max = \"lots\"\n"), 0o644)
	d.signal(syscall.SIGHUP, 0)
	if m := next("RELOADING=1"); !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("reloading without MONOTONIC_USEC: %q", m)
	}
	if m := next("READY=1"); !strings.Contains(m, "STATUS=reload failed") || !strings.Contains(m, "lots") {
		t.Errorf("after a refused reload: %q, want a STATUS naming the failure", m)
	}
	d.waitMetric(0, "spliced_config_reload_success")

	os.WriteFile(cfg, []byte(good), 0o644)
	d.signal(syscall.SIGHUP, 0)
	next("RELOADING=1")
	if m := next("READY=1"); !strings.Contains(m, "reloaded") {
		t.Errorf("after a good reload: %q", m)
	}
	d.waitMetric(1, "spliced_config_reload_success")
	if v := metric(d.metrics(), "spliced_build_info"); v != 1 {
		t.Errorf("spliced_build_info = %v", v)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	<-d.exited
}

// TestUnitVerifies: contrib/spliced.service passes systemd-analyze verify (where it is
// installed), with the binary and config paths of this checkout.
func TestUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "contrib", "spliced.service"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := filepath.Abs(filepath.Join("..", "..", "contrib", "spliced.toml"))
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/spliced", binary)
	text = strings.ReplaceAll(text, "/etc/spliced/spliced.toml", cfg)
	path := filepath.Join(t.TempDir(), "spliced.service")
	os.WriteFile(path, []byte(text), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
