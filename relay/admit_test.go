package relay

import (
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	good := []struct {
		in   string
		want Rate
		str  string
	}{
		{"", Rate{}, "0"},
		{"0", Rate{}, "0"},
		{"100/s", Rate{100, time.Second}, "100/s"},
		{" 600 / m ", Rate{600, time.Minute}, "600/m"},
		{"10/min", Rate{10, time.Minute}, "10/m"},
		{"5/h", Rate{5, time.Hour}, "5/h"},
		{"10/5s", Rate{10, 5 * time.Second}, "10/5s"},
		{"1/1m30s", Rate{1, 90 * time.Second}, "1/1m30s"},
	}
	for _, tt := range good {
		r, err := ParseRate(tt.in)
		if err != nil || r != tt.want || r.String() != tt.str {
			t.Errorf("ParseRate(%q) = %v (%q), %v; want %v (%q)", tt.in, r, r.String(), err, tt.want, tt.str)
		}
	}
	for _, in := range []string{"100", "x/s", "-1/s", "0/s", "10/x", "10/0s", "10/-1s", "1/25h", "1/500us", "2000000/1ms"} {
		if r, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", in, r)
		}
	}
}

func TestSourceKey(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7:0"},
		{"::ffff:192.0.2.7", "192.0.2.7:0"},
		{"2001:db8:1:2:3:4:5:6", "[2001:db8:1:2::]:0"},
		{"2001:db8:1:2:ffff::1", "[2001:db8:1:2::]:0"},
		{"fe80::1%eth0", "[fe80::]:0"},
	} {
		if got := sourceKey(netip.MustParseAddr(tt.in)); got.String() != tt.want {
			t.Errorf("sourceKey(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestMaxFlowsFor(t *testing.T) {
	for _, tt := range []struct {
		nofile uint64
		want   int64
	}{
		{1024, 384}, {20000, 9000}, {65536, 29491}, {256, 1}, {100, 1}, {1 << 62, (1<<40 - 1<<40/10) / 2},
	} {
		if got := maxFlowsFor(tt.nofile); got != tt.want {
			t.Errorf("maxFlowsFor(%d) = %d, want %d", tt.nofile, got, tt.want)
		}
	}
	if DefaultMaxFlows() < 1 {
		t.Error("DefaultMaxFlows < 1")
	}
}

// TestRateBurstThenSteady: a source may open N at once, then one per Per/N.
func TestRateBurstThenSteady(t *testing.T) {
	var s source
	r := Rate{N: 4, Per: time.Second}
	now := time.Unix(1000, 0).UnixNano()
	for i := range 4 {
		if !s.take(r, now) {
			t.Fatalf("burst: flow %d refused", i+1)
		}
	}
	if s.take(r, now) {
		t.Fatal("a fifth flow at once was allowed")
	}
	step := int64(250 * time.Millisecond)
	if s.take(r, now+step-1) {
		t.Fatal("allowed before a quarter second passed")
	}
	if !s.take(r, now+step) {
		t.Fatal("refused a quarter second on")
	}
	if s.take(r, now+step) {
		t.Fatal("two allowed in one quarter second")
	}
	// Idle for long: the bucket is full again, and no fuller.
	later := now + int64(time.Hour)
	for i := range 4 {
		if !s.take(r, later) {
			t.Fatalf("after an hour: flow %d refused", i+1)
		}
	}
	if s.take(r, later) {
		t.Fatal("after an hour, more than the burst allowed")
	}
}

// TestSourcesCountExactly: workers admitting and releasing from one source while the
// sweep runs never let more than the cap in, and leave the table empty when done.
func TestSourcesCountExactly(t *testing.T) {
	ss, err := newSources("test")
	if err != nil {
		t.Fatal(err)
	}
	const cap, workers, rounds = 8, 4, 2000
	client := netip.MustParseAddr("192.0.2.1")
	stop := make(chan struct{})
	var sweeper sync.WaitGroup
	sweeper.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				ss.sweep(time.Now().UnixNano())
			}
		}
	})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				s, why := ss.admit(client, cap, Rate{})
				if why != "" {
					continue
				}
				if n := s.flows.Load(); n < 1 || n > cap {
					t.Errorf("%d flows counted on the source after an admit, want 1 to %d", n, cap)
				}
				runtime.Gosched()
				s.release()
			}
		})
	}
	wg.Wait()
	close(stop)
	sweeper.Wait()
	if n := ss.sweep(time.Now().UnixNano()); n != 0 {
		t.Errorf("%d sources left after every flow ended", n)
	}
	// Held flows: exactly cap admitted, the next refused by reason.
	var held []*source
	for range cap {
		s, why := ss.admit(client, cap, Rate{})
		if why != "" {
			t.Fatalf("refused (%s) under the cap", why)
		}
		held = append(held, s)
	}
	if _, why := ss.admit(client, cap, Rate{}); why != refusedPerSource {
		t.Fatalf("over the cap: %q, want %q", why, refusedPerSource)
	}
	other, why := ss.admit(netip.MustParseAddr("192.0.2.2"), cap, Rate{})
	if why != "" {
		t.Fatalf("another source refused: %q", why)
	}
	if n := ss.sweep(time.Now().UnixNano()); n != 2 {
		t.Fatalf("%d sources after a sweep with both open, want 2", n)
	}
	other.release()
	if n := ss.sweep(time.Now().UnixNano()); n != 1 {
		t.Fatalf("%d sources after 192.0.2.2's flow ended, want 1", n)
	}
	for _, s := range held {
		s.release()
	}
	if n := ss.sweep(time.Now().UnixNano()); n != 0 {
		t.Fatalf("%d sources after every flow ended, want 0", n)
	}
}
