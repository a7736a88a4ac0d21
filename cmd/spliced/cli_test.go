package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHelp(t *testing.T) {
	for _, cmd := range []string{"run", "bench", "stat", "version"} {
		code, out, errs := spliced(t, cmd, "--help")
		if code != 0 || !strings.Contains(out, "Usage") || errs != "" {
			t.Errorf("spliced %s --help: exit %d, stdout %q, stderr %q", cmd, code, out, errs)
		}
	}
	if code, out, _ := spliced(t, "--help"); code != 0 || !strings.Contains(out, "spliced run") {
		t.Errorf("spliced --help: %d %q", code, out)
	}
	code, out, _ := spliced(t, "run", "--help")
	if code != 0 || !strings.Contains(out, "--listen ADDR") || !strings.Contains(out, "--mem-limit SIZE") || !strings.Contains(out, "--connect-timeout DURATION") {
		t.Errorf("run --help lists no long flags: %d\n%s", code, out)
	}
	// The safe defaults show.
	for _, w := range []string{"--idle DURATION", "default 10m (TCP)", "--keepalive DURATION", "default 60s"} {
		if !strings.Contains(out, w) {
			t.Errorf("run --help does not say %q:\n%s", w, out)
		}
	}
	// The package-net baselines are for spliced bench, not for running.
	if strings.Contains(out, "iocopy") || strings.Contains(out, "baseline") {
		t.Errorf("run --help offers the benchmark baselines:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := spliced(t, args...)
		if code != 0 || !strings.HasPrefix(out, "spliced ") || !strings.Contains(out, "go1.") {
			t.Errorf("%v: %d %q", args, code, out)
		}
	}
}

// TestBadUsage checks that bad flags, values and configurations exit with status 2 and
// a message naming the problem.
func TestBadUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[[relay]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\ntargets = [\"127.0.0.1:80\"]\nidle = \"soon\"\nlisen = 1\n"), 0o644)
	syntax := filepath.Join(dir, "syntax.toml")
	os.WriteFile(syntax, []byte("[[relay]\n"), 0o644)
	to := "--to=127.0.0.1:1"
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{}, []string{"spliced run"}},
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`}},
		{[]string{"run", "--bogus"}, []string{"unknown flag --bogus"}},
		{[]string{"run", "--listen", "127.0.0.1:0"}, []string{"--to"}},
		{[]string{"run", "--listen", "127.0.0.1:99999", to}, []string{"--listen", "99999", "out of range"}},
		{[]string{"run", "--listen", "127.0.0.1:0", "--to", "127.0.0.1"}, []string{"--to", `"127.0.0.1"`, "host:port"}},
		{[]string{"run", "--listen", "127.0.0.1:0", "--to", "no-such-host.invalid:80"}, []string{"--to", "no-such-host.invalid", "does not resolve"}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "--max", "64XB"}, []string{"--max", `"64XB"`, "bad size"}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "--idle", "5 minutes"}, []string{"--idle", `"5 minutes"`, "duration"}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "--mode", "fast"}, []string{"--mode", `"fast"`, "auto, user, kernel"}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "--mode", "iocopy"}, []string{"--mode", `"iocopy"`, "auto, user, kernel"}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "--connect-timeout", "1us"}, []string{"--connect-timeout", "1ms"}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "--connect-timeout", "1h"}, []string{"--connect-timeout", "1h", "10m"}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "--keepalive", "100ms"}, []string{"--keepalive", "1s or more"}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "--udp", "--idle", "0"}, []string{"--idle", "UDP flow"}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "--udp", "--mode", "kernel"}, []string{"--mode", "TCP"}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "--workers", "many"}, []string{"--workers", `"many"`}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "--admin", "0.0.0.0:6060"}, []string{"--admin", "0.0.0.0:6060", "--admin-public"}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "--log-format", "xml"}, []string{"--log-format", "text, json"}},
		{[]string{"run", "--listen", "127.0.0.1:0", to, "extra"}, []string{`unexpected argument "extra"`}},
		{[]string{"run", "--config", bad, "--listen", "127.0.0.1:0"}, []string{"--listen cannot be used with --config"}},
		{[]string{"run", "--config", bad}, []string{bad + ":5:", `idle = "soon"`, bad + ":6:", "lisen", "unknown key"}},
		{[]string{"run", "--config", syntax}, []string{syntax + ":2:", "expected"}},
		{[]string{"run", "--config", filepath.Join(dir, "missing.toml")}, []string{"missing.toml", "no such file"}},
		{[]string{"bench", "--streams", "0"}, []string{"--streams 0"}},
		{[]string{"bench", "--mode", "warp"}, []string{"--mode", "iocopy"}},
		{[]string{"bench", "--time", "forever"}, []string{"--time", `"forever"`}},
		{[]string{"stat", "--admin"}, []string{"--admin", "needs an argument"}},
	} {
		code, out, errs := spliced(t, tc.args...)
		if code != 2 {
			t.Errorf("spliced %q: exit %d, want 2 (stdout %q, stderr %q)", tc.args, code, out, errs)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("spliced %q: stderr %q does not name %q", tc.args, errs, w)
			}
		}
	}
}

// TestRunStartFailure checks that a relay that cannot listen stops the daemon with
// status 1 and says why.
func TestRunStartFailure(t *testing.T) {
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, errs := spliced(t, "run", "--listen", ln.Addr().String(), "--to", "127.0.0.1:1", "--mode", testMode, "--admin", "off")
	if code != 1 || !strings.Contains(errs, "address already in use") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

// TestRunStartFailureLeavesNothing: when the second relay of a config cannot listen, the
// daemon does not run on with only the first. It exits 1 naming the address, and the first
// relay's port and the admin port are free again.
func TestRunStartFailureLeavesNothing(t *testing.T) {
	busy, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	admin, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := admin.Addr().String()
	admin.Close()
	cfg := filepath.Join(t.TempDir(), "two.toml")
	text := fmt.Sprintf("admin = %q\n[[relay]]\nname = \"a\"\nlisten = %q\ntargets = [\"127.0.0.1:1\"]\n"+
		"[[relay]]\nname = \"b\"\nlisten = %q\ntargets = [\"127.0.0.1:1\"]\n", adminAddr, freeAddr, busy.Addr().String())
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := spliced(t, "run", "--config", cfg)
	if code != 1 || !strings.Contains(errs, busy.Addr().String()) || !strings.Contains(errs, "address already in use") {
		t.Fatalf("exit %d, stderr %q; want 1 naming %s", code, errs, busy.Addr())
	}
	for _, addr := range []string{freeAddr, adminAddr} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s still taken after the daemon exited: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

// TestNoTimersWarns: a relay with neither an idle timeout nor keepalive starts, and says
// at start that its flows may stay open for ever.
func TestNoTimersWarns(t *testing.T) {
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--idle", "0", "--keepalive", "0")
	d.waitLog("relay has neither an idle timeout nor keepalive: a flow whose peer vanished or went silent stays open for ever")
}
