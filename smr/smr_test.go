package smr

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPollBeforeAndAfterExit(t *testing.T) {
	s := New("t")
	old := s.Advance() // unlinked before the section: it cannot see it
	s.Enter()
	goal := s.Advance() // unlinked during the section: it may hold it
	if !s.Poll(old) {
		t.Error("a goal from before the section is held back by it")
	}
	if s.Poll(goal) {
		t.Error("Poll met a goal from inside a section before its Exit")
	}
	s.Exit()
	if !s.Poll(goal) {
		t.Error("Poll did not meet the goal after Exit")
	}
	if Seq(s.rd.Load()) != goal {
		t.Errorf("rd = %d after a successful scan, want the goal %d", s.rd.Load(), goal)
	}
	s.Wait(goal)    // met: returns at once
	s.Synchronize() // no readers: returns at once
	if !s.Poll(SeqInvalid) {
		t.Error("SeqInvalid is a goal that is always met")
	}
}

// TestPollWaitsForReaderOnAnotherP holds a section open on one goroutine and checks that
// a writer on another cannot reach its goal until the section ends, and that Wait
// returns once it does.
func TestPollWaitsForReaderOnAnotherP(t *testing.T) {
	needProcs(t, 2)
	s := New("t")
	var entered, release atomic.Bool
	var timedOut bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Enter()
		entered.Store(true)
		// Spin, pinned, until released; bounded, because a stop-the-world would wait
		// for this section while the releasing goroutine is stopped.
		deadline := time.Now().Add(2 * time.Second)
		for !release.Load() {
			if time.Now().After(deadline) {
				timedOut = true
				break
			}
		}
		s.Exit()
	}()
	for !entered.Load() {
		runtime.Gosched()
	}
	goal := s.Advance()
	held := !s.Poll(goal)
	release.Store(true)
	s.Wait(goal)
	<-done
	if timedOut {
		t.Skip("the releasing goroutine was not scheduled in time")
	}
	if !held {
		t.Fatal("Poll met a goal while a section that began before it was open")
	}
}

func TestSectionsOfDifferentSMRsNest(t *testing.T) {
	a, b := New("a"), New("b")
	a.Enter()
	b.Enter()
	ga, gb := a.Advance(), b.Advance()
	b.Exit()
	if !b.Poll(gb) || a.Poll(ga) {
		t.Fatalf("after b.Exit: b.Poll = %v (want true), a.Poll = %v (want false)", b.Poll(gb), a.Poll(ga))
	}
	a.Exit()
	if !a.Poll(ga) {
		t.Fatal("a.Poll after a.Exit = false")
	}
}

func TestExitWithoutEnterPanics(t *testing.T) {
	s := New("lonely")
	v := mustPanic(t, s.Exit)
	if msg, _ := v.(string); !strings.Contains(msg, "smr(lonely): Exit outside a read section") {
		t.Fatalf("panic %v", v)
	}
	// The panic left the goroutine unpinned and the SMR usable.
	s.Enter()
	s.Exit()
	s.Synchronize()
}

func TestZeroSMRPanics(t *testing.T) {
	var s SMR
	for _, f := range []func(){s.Enter, s.Exit} {
		if v := mustPanic(t, f); !strings.HasPrefix(fmt.Sprint(v), "smr") {
			t.Errorf("panic %v", v)
		}
	}
}

func TestGoalAfterTheClockPanics(t *testing.T) {
	s := New("future")
	other := New("other")
	other.Advance()
	other.Advance()
	v := mustPanic(t, func() { s.Poll(other.Advance()) })
	if msg, _ := v.(string); !strings.Contains(msg, "is after the write clock") {
		t.Fatalf("panic %v", v)
	}
}

// TestMisuseIsFatal checks the two mistakes that happen while the goroutine is pinned, and
// so cannot be recovered: a nested Enter and a Wait inside a section. They run in a child
// process, which must die with the SMR's message.
func TestMisuseIsFatal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, c := range []struct{ mode, want string }{
		{"nested", "smr(misuse): Enter inside a read section of the same SMR"},
		{"wait", "smr(misuse): Wait inside a read section would wait for itself"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMisuseChild$", "-test.v")
		cmd.Env = append(os.Environ(), "SMR_MISUSE="+c.mode)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "fatal error") {
			t.Errorf("%s: err %v, output:\n%s", c.mode, err, out)
		}
	}
}

// TestMisuseChild is the child process of TestMisuseIsFatal; it does nothing otherwise.
func TestMisuseChild(t *testing.T) {
	s := New("misuse")
	switch os.Getenv("SMR_MISUSE") {
	case "nested":
		s.Enter()
		s.Enter()
	case "wait":
		s.Enter()
		s.Wait(s.Advance())
	default:
		t.Skip("run by TestMisuseIsFatal")
	}
	t.Fatal("survived the misuse")
}

// TestTableGrowsWithGOMAXPROCS starts an SMR with one P, raises GOMAXPROCS to 4 and
// enters sections until every P has a slot; the slots that existed must be kept.
func TestTableGrowsWithGOMAXPROCS(t *testing.T) {
	old := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(old)
	s := New("grow")
	first := s.table.Load().slots
	if len(first) != 1 {
		t.Fatalf("table of %d slots with GOMAXPROCS 1", len(first))
	}
	runtime.GOMAXPROCS(4)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				s.Enter()
				s.Exit()
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.table.Load().slots) < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	slots := s.table.Load().slots
	if len(slots) != 4 || slots[0] != first[0] {
		t.Fatalf("table %d slots, slot 0 kept %v", len(slots), slots[0] == first[0])
	}
	for i, c := range slots {
		if c.seq.Load() != uint64(SeqInvalid) {
			t.Errorf("slot %d not idle after every section ended", i)
		}
	}
	s.Synchronize()
}
