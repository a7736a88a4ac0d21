package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestInterleaveFailedStart: a relay that exits at start gives a failed row (a row per
// variant for a tool with variants) named after it, and the direct path runs with no
// process.
func TestInterleaveFailedStart(t *testing.T) {
	specs := []relaySpec{
		directSpec,
		{name: "exits", start: func(string, string, string) *exec.Cmd { return exec.Command("false") }},
	}
	target := fixed("127.0.0.1:1")
	tcp := interleave(specs, target, t.TempDir(), TCPResult{Streams: 8}, func(rp *relayProc) (TCPResult, error) {
		if rp.pid() != 0 || rp.listen != "127.0.0.1:1" {
			t.Errorf("direct path: pid %d, listen %s", rp.pid(), rp.listen)
		}
		return TCPResult{Streams: 8, Gbits: 1}, nil
	}, func(TCPResult) string { return "" })
	if len(tcp) != 2 || len(tcp[0]) != max(*flagRounds, 1) {
		t.Fatalf("runs %v", tcp)
	}
	if r := tcp[0][0]; r.Relay != directSpec.name || !r.Direct || r.Err != "" || r.Gbits != 1 {
		t.Errorf("direct row %+v", r)
	}
	if r := tcp[1][0]; r.Relay != "exits" || r.Streams != 8 || !strings.Contains(r.Err, "exits exited at start") {
		t.Errorf("failed row %+v", r)
	}

	wrk := interleave(specs[1:], target, t.TempDir(), nil, func(*relayProc) (wrkRun, error) {
		t.Error("ran without a relay")
		return nil, nil
	}, func(wrkRun) string { return "" })
	rows := medians(byVariant(wrk, []string{"keep-alive", "close"}, func(r WrkResult) string { return r.Conn }),
		keyWrk, func(r WrkResult) float64 { return r.PerSec }, func(r *WrkResult) *[]float64 { return &r.Samples })
	if len(rows) != 2 || rows[0].Conn != "keep-alive" || rows[1].Conn != "close" {
		t.Fatalf("wrk rows %+v", rows)
	}
	for _, r := range rows {
		if r.Relay != "exits" || r.Err == "" || r.Samples != nil {
			t.Errorf("wrk row %+v", r)
		}
	}
}
