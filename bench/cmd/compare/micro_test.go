package main

import (
	"flag"
	"testing"
)

// TestMicros runs every microbenchmark a few iterations: its setup, timed loop and
// teardown work, and runMicros gives each a row.
func TestMicros(t *testing.T) {
	was := flag.Lookup("test.benchtime").Value.String()
	if err := flag.Set("test.benchtime", "20x"); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = flag.Set("test.benchtime", was) }()
	rs := runMicros(gvisorOK(), 1, t.Logf)
	if want := len(micros(gvisorOK())); len(rs) != want {
		t.Fatalf("%d rows, want %d", len(rs), want)
	}
	for _, r := range rs {
		if r.N == 0 || r.NsOp <= 0 || len(r.Samples) != 1 {
			t.Errorf("%s, %s: %d iterations, %.1f ns/op, %d samples", r.Group, r.Impl, r.N, r.NsOp, len(r.Samples))
		}
	}
}
