package smr

import (
	"math"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"
)

// TestStress recycles items under readers on every P and checks that no reader ever sees
// an item reused inside its section. The clock starts 1000 advances below the wrap, so the
// run crosses it.
func TestStress(t *testing.T) {
	needProcs(t, 2)
	start := Seq(math.MaxUint64) - 2*1000
	s := newAt("stress", start)
	r := stress(s, stressConfig{
		readers: 3, writers: 2, slotsPerWriter: 4, sparePerWriter: 4,
		policy: reuseAfterGoal, plain: true, d: stressTime(),
	})
	t.Log(r)
	if r.violations != 0 {
		t.Fatalf("%d violations; first: %s", r.violations, r.firstViolation)
	}
	if r.reads == 0 || r.recycled == 0 {
		t.Fatalf("no progress: %v", r)
	}
	if runtime.NumCPU() >= 2 && r.pollMisses+r.waits == 0 {
		t.Errorf("no reader ever held a writer back, so SMR was not exercised: %v", r)
	}
	if r.recycled > 1000 && !(uint64(s.Current()) < uint64(start)) {
		t.Errorf("%d advances from %d did not wrap the clock: now %d", r.recycled, start, s.Current())
	}
}

// TestStressBrokenWriterIsCaught runs the same harness with a writer that reuses items as
// soon as it unlinks them. The checker must catch it: otherwise TestStress proves nothing.
func TestStressBrokenWriterIsCaught(t *testing.T) {
	needCPUs(t, 2)
	needProcs(t, 2)
	r := stress(New("broken"), stressConfig{
		readers: 2, writers: 2, slotsPerWriter: 1, sparePerWriter: 1,
		policy: reuseAtOnce, d: 5 * time.Second, stopOnViolation: true,
	})
	t.Log(r)
	if r.violations == 0 {
		t.Fatal("a writer that does not wait for readers went unnoticed")
	}
	t.Log("first violation: ", r.firstViolation)
}

// TestStressWhileGOMAXPROCSChanges runs the stress while GOMAXPROCS cycles through
// 1, 2, 4 and back, starting from an SMR made with one P, so slots appear mid-run and
// Ps come and go.
func TestStressWhileGOMAXPROCSChanges(t *testing.T) {
	old := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(old)
	s := New("procs")
	var changes int
	r := stress(s, stressConfig{
		readers: 4, writers: 2, slotsPerWriter: 4, sparePerWriter: 4,
		policy: reuseAfterGoal, plain: true, d: stressTime(),
		during: func(stop *atomic.Bool) {
			for !stop.Load() {
				for _, n := range []int{2, 4, 1, 4, 2, 1} {
					runtime.GOMAXPROCS(n)
					changes++
					runtime.Gosched()
				}
			}
		},
	})
	t.Logf("%v; %d GOMAXPROCS changes; %d slots", r, changes, len(s.table.Load().slots))
	if r.violations != 0 {
		t.Fatalf("%d violations; first: %s", r.violations, r.firstViolation)
	}
	if n := len(s.table.Load().slots); n < 2 {
		t.Errorf("the slot table did not grow with GOMAXPROCS: %d slots", n)
	}
}

// forced plays one reader against one writer in a fixed order: the reader enters and
// finds item X; the writer unlinks X and, with the correct policy, checks that its goal
// is held back, or with the broken one reuses X at once; then the reader looks at X again
// and leaves. It reports whether the reader saw X reused, and whether Poll held the goal.
func forced(t *testing.T, p policy) (violation, held bool) {
	t.Helper()
	needCPUs(t, 2)
	needProcs(t, 2)
	// A stop-the-world waits for the pinned reader, which waits for the writer: keep
	// the collector from starting one, and bound the reader's wait in any case.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for attempt := 0; attempt < 5; attempt++ {
		s := New("forced")
		h := newHarness(s, 1, false)
		w := h.newWriter([]int{0}, 1, p) // X in the table, one spare
		x := h.table[0].Load()
		var entered, release, timedOut atomic.Bool
		var g1, g2 uint64
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Enter()
			x := h.table[0].Load() // the reader finds X
			g1 = x.gen.Load()
			entered.Store(true)
			deadline := time.Now().Add(500 * time.Millisecond)
			for !release.Load() {
				if time.Now().After(deadline) {
					timedOut.Store(true)
					break
				}
			}
			g2 = x.gen.Load()
			s.Exit()
		}()
		for !entered.Load() {
			runtime.Gosched()
		}
		w.replace(0) // unlinks X; the spare takes its place
		switch p {
		case reuseAtOnce:
			w.replace(0) // takes X straight back: the reader still holds it
		case reuseAfterGoal:
			held = !s.Poll(w.pending[0].goal)
		}
		release.Store(true)
		<-done
		if p == reuseAfterGoal {
			w.replace(0) // the goal is met now: X comes back
			if h.table[0].Load() != x {
				t.Fatal("X was not reused once the reader had left")
			}
		}
		if !timedOut.Load() {
			return violated(g1, g2), held
		}
	}
	t.Skip("the writer goroutine was not scheduled while the reader waited")
	return
}

func TestForcedBrokenWriterIsCaught(t *testing.T) {
	if violation, _ := forced(t, reuseAtOnce); !violation {
		t.Fatal("the checker missed an item reused inside a section")
	}
}

func TestForcedCorrectWriterWaits(t *testing.T) {
	violation, held := forced(t, reuseAfterGoal)
	if violation || !held {
		t.Fatalf("violation %v, goal held back during the section %v; want false, true", violation, held)
	}
}
