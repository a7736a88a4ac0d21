package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchJSON(t *testing.T) {
	for _, args := range [][]string{
		{"--time", "500ms"}, // the default mode, auto
		{"--mode", "user", "--time", "500ms", "--streams", "2"},
		{"--time", "500ms", "--udp"},
		{"--mode", "copy", "--time", "500ms"},
		{"--mode", "iocopy", "--time", "500ms", "--streams", "2"},
		{"--mode", "copy", "--time", "500ms", "--udp"},
	} {
		code, out, errs := spliced(t, append([]string{"bench", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("bench %v: exit %d: %s", args, code, errs)
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("bench %v --json: %v\n%s", args, err, out)
		}
		for _, k := range []string{"mode", "streams", "seconds", "bytes", "gbps", "relay_cpu_seconds"} {
			if _, ok := r[k]; !ok {
				t.Errorf("bench %v --json has no %q", args, k)
			}
		}
		if b, _ := r["bytes"].(float64); b <= 0 {
			t.Errorf("bench %v moved no bytes", args)
		}
		if strings.Contains(strings.Join(args, " "), "--udp") {
			if v, _ := r["datagrams_per_sec"].(float64); v <= 0 {
				t.Errorf("UDP bench: datagrams_per_sec %v", r["datagrams_per_sec"])
			}
		}
	}
}

func TestBenchReport(t *testing.T) {
	code, out, errs := spliced(t, "bench", "--mode", "copy", "--time", "1200ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, w := range []string{"[SUM]   0.00-1.0", "Gbits/sec", "relay", "mode copy"} {
		if !strings.Contains(out, w) {
			t.Errorf("report has no %q:\n%s", w, out)
		}
	}
}
