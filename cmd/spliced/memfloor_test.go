package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/softnet-go/softnet/mbuf"
	"github.com/softnet-go/softnet/relay"
)

// memFloorRE finds the minimum in the daemon's refusal of a too small --mem-limit.
var memFloorRE = regexp.MustCompile(`must be 0 \(unlimited\) or at least (\S+) \(what (\d+) workers? needs? to move one flow each\)`)

// memFloor asks the daemon for the smallest --mem-limit it accepts with the given extra
// flags, from its refusal of --mem-limit 1, and checks the refusal: exit status 2,
// naming the flag and the minimum.
func memFloor(t *testing.T, extra ...string) (floor int64, workers int) {
	t.Helper()
	args := append([]string{"run", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:9", "--admin", "off", "--mem-limit", "1"}, extra...)
	code, _, stderr := spliced(t, args...)
	m := memFloorRE.FindStringSubmatch(stderr)
	if code != 2 || !strings.Contains(stderr, "--mem-limit 1: ") || m == nil {
		t.Fatalf("spliced %s: exit %d, want 2 and the minimum named:\n%s", strings.Join(args, " "), code, stderr)
	}
	floor, err := relay.ParseSize(m[1])
	if err != nil {
		t.Fatalf("minimum %q: %v", m[1], err)
	}
	workers, _ = strconv.Atoi(m[2])
	return floor, workers
}

// TestMemLimitFloorRefused: a --mem-limit below what the workers need is refused before
// the daemon starts, with exit status 2 and the minimum, which is mbuf.MinLimit; one
// byte less than the minimum is refused, the minimum itself is not; a configuration file
// names its key; 0 stays unlimited.
func TestMemLimitFloorRefused(t *testing.T) {
	for _, w := range []int{1, 2, 4, 8} {
		floor, workers := memFloor(t, "--workers", strconv.Itoa(w))
		if workers != w || floor != mbuf.MinLimit(w) {
			t.Errorf("--workers %d: minimum %d for %d workers, want %d (mbuf.MinLimit)", w, floor, workers, mbuf.MinLimit(w))
		}
		code, _, stderr := spliced(t, "run", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:9", "--admin", "off",
			"--workers", strconv.Itoa(w), "--mem-limit", strconv.FormatInt(floor-1, 10))
		if code != 2 || !strings.Contains(stderr, relay.FormatSize(floor)) {
			t.Errorf("--workers %d --mem-limit %d (the minimum less a byte): exit %d\n%s", w, floor-1, code, stderr)
		}
	}
	floor, workers := memFloor(t)
	t.Logf("smallest --mem-limit: %s with the default %d workers; %s, %s, %s, %s with 1, 2, 4, 8",
		relay.FormatSize(floor), workers, relay.FormatSize(mbuf.MinLimit(1)), relay.FormatSize(mbuf.MinLimit(2)),
		relay.FormatSize(mbuf.MinLimit(4)), relay.FormatSize(mbuf.MinLimit(8)))

	conf := filepath.Join(t.TempDir(), "spliced.toml")
	text := "mem_limit = \"1KiB\"\nworkers = 1\n[[relay]]\nname = \"r\"\nlisten = \"127.0.0.1:0\"\ntargets = [\"127.0.0.1:9\"]\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := spliced(t, "run", "--config", conf, "--admin", "off")
	if code != 2 || !strings.Contains(stderr, "mem_limit = 1KiB: must be 0 (unlimited) or at least "+relay.FormatSize(mbuf.MinLimit(1))) {
		t.Errorf("mem_limit = \"1KiB\" in a file: exit %d\n%s", code, stderr)
	}
}

// TestMemLimitFloorMovesFlows: at exactly the smallest --mem-limit the daemon accepts,
// in user mode, 50 flows at once each move 256 KiB both ways through an echo target,
// byte-exact, well within a minute; the limit was really in force (slab charges were
// refused at it, and never exceeded it); and the daemon then exits 0 on SIGTERM. Below
// the minimum, one flow used to wait for ever.
func TestMemLimitFloorMovesFlows(t *testing.T) {
	for _, workers := range []string{"default", "1", "4", "8"} {
		t.Run("workers="+workers, func(t *testing.T) {
			var extra []string
			if workers != "default" {
				extra = []string{"--workers", workers}
			}
			floor, _ := memFloor(t, extra...)
			testFloorFlows(t, floor, extra)
		})
	}
}

func testFloorFlows(t *testing.T, floor int64, extra []string) {
	target := tcpTarget(t, echo)
	args := append([]string{"--listen", "127.0.0.1:0", "--to", target, "--mode", "user",
		"--mem-limit", strconv.FormatInt(floor, 10)}, extra...)
	d := startDaemon(t, args...)

	const flows, size = 50, 256 << 10
	deadline := time.Now().Add(60 * time.Second)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, flows)
	for i := range flows {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i*131 + j*7 + j>>8)
		}
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", d.addr(), 5*time.Second)
			if err != nil {
				errs <- fmt.Errorf("flow %d: %v", i, err)
				return
			}
			defer c.Close()
			c.SetDeadline(deadline)
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(data)
				c.(*net.TCPConn).CloseWrite()
				werr <- err
			}()
			got, err := io.ReadAll(c)
			if err == nil {
				err = <-werr
			}
			if err != nil || !bytes.Equal(got, data) {
				errs <- fmt.Errorf("flow %d: %d of %d bytes back (equal: %v), %v", i, len(got), size, bytes.Equal(got, data), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 5 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d flows failed at --mem-limit %d (%s)\n%s", failed, flows, floor, time.Since(start), d.get("/debug/mbuf"))
	}
	mf := d.metrics()
	peak, refused := metric(mf, "spliced_mem_peak_bytes"), metric(mf, "spliced_mem_refused_total")
	t.Logf("--mem-limit %s: %d flows × %d KiB each way in %v; memory peak %v bytes, %v slab charges refused",
		relay.FormatSize(floor), flows, size>>10, time.Since(start).Round(time.Millisecond), peak, refused)
	if peak > float64(floor) {
		t.Errorf("memory peak %v over the limit %d", peak, floor)
	}
	if refused <= 0 {
		t.Errorf("no slab charge refused: the limit %d was never in the way", floor)
	}
	if code := d.signal(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

// TestMemLimitFloorReload: a SIGHUP that brings a mem_limit below the minimum is refused
// and logged, and the limit in force stays.
func TestMemLimitFloorReload(t *testing.T) {
	target := tcpTarget(t, echo)
	conf := filepath.Join(t.TempDir(), "spliced.toml")
	write := func(limit string) {
		text := "workers = 1\nmem_limit = \"" + limit + "\"\n[[relay]]\nname = \"r\"\nlisten = \"127.0.0.1:0\"\ntargets = [\"" + target + "\"]\nmode = \"user\"\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1MiB")
	d := startDaemon(t, "--config", conf)
	write("1KiB")
	d.signal(syscall.SIGHUP, 0)
	rec := d.waitLog("SIGHUP: memory limit not changed")
	if err, _ := rec["err"].(string); !strings.Contains(err, "at least "+relay.FormatSize(mbuf.MinLimit(1))) {
		t.Errorf("refusal logged as %q, want the minimum named", err)
	}
	d.waitLog("configuration reloaded")
	if v := metric(d.metrics(), "spliced_mem_limit_bytes"); v != 1<<20 {
		t.Errorf("spliced_mem_limit_bytes = %v after a refused reload, want %d", v, 1<<20)
	}
	c := dial(t, d.addr())
	c.Write([]byte("still relaying"))
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "still relaying" {
		t.Errorf("after the refused reload: %q, %v", b, err)
	}
	if code := d.signal(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}
