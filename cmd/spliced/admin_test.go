package main

import (
	"io"
	"strings"
	"testing"
)

func TestAdminEndpoint(t *testing.T) {
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--mode", testMode)
	if s := d.get("/healthz"); s != "ok\n" {
		t.Errorf("/healthz: %q", s)
	}
	if s := d.get("/debug/pprof/"); !strings.Contains(s, "goroutine") {
		t.Errorf("/debug/pprof/: %q", s)
	}
	mbuf := d.get("/debug/mbuf")
	if !strings.Contains(mbuf, "mbuf") {
		t.Errorf("/debug/mbuf: %q", mbuf)
	}
	code, out, errs := spliced(t, "stat", "--admin", d.admin)
	if code != 0 || out != mbuf {
		t.Errorf("spliced stat: exit %d, %q (stderr %q); /debug/mbuf gave %q", code, out, errs, mbuf)
	}
	mf := d.metrics()
	for _, name := range []string{"spliced_mem_limit_bytes", "spliced_mem_used_bytes", "spliced_zone_in_use"} {
		if mf[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
}

func TestStatNoDaemon(t *testing.T) {
	ln, _ := netListen()
	addr := ln.Addr().String()
	ln.Close()
	code, _, errs := spliced(t, "stat", "--admin", addr)
	if code != 1 || !strings.Contains(errs, "connection refused") {
		t.Errorf("exit %d, %q", code, errs)
	}
}

func TestAdminLoopbackOnly(t *testing.T) {
	code, _, errs := spliced(t, "run", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--admin", ":6060")
	if code != 2 || !strings.Contains(errs, "--admin-public") {
		t.Errorf("exit %d, %q", code, errs)
	}
}

// TestWorkersAndMemLimit checks that --workers and --mem-limit take effect: data flows
// on one worker under a small memory limit, which /metrics reports.
func TestWorkersAndMemLimit(t *testing.T) {
	target := tcpTarget(t, echo)
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", "user", "--workers", "1", "--mem-limit", "2MiB")
	data := make([]byte, 8<<20)
	c := dial(t, d.addr())
	go func() {
		c.Write(data)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || len(got) != len(data) {
		t.Fatalf("%d bytes back of %d through a 2MiB limit: %v", len(got), len(data), err)
	}
	mf := d.metrics()
	if v := metric(mf, "spliced_mem_limit_bytes"); v != 2<<20 {
		t.Errorf("spliced_mem_limit_bytes = %v", v)
	}
	if v := metric(mf, "spliced_mem_peak_bytes"); v <= 0 || v > 2<<20 {
		t.Errorf("spliced_mem_peak_bytes = %v, want within the limit", v)
	}
}
