package netq

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestTimerOrder(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	fired := make(chan int, 8)
	delays := []int{30, 10, 20, 5, 25}
	timers := make([]Timer, len(delays))
	for i, ms := range delays {
		w.InitTimer(&timers[i], func() { fired <- ms })
	}
	for i, ms := range delays {
		timers[i].Reset(time.Duration(ms) * time.Millisecond)
	}
	var got []int
	for range delays {
		select {
		case ms := <-fired:
			got = append(got, ms)
		case <-time.After(5 * time.Second):
			t.Fatalf("fired %v, then nothing", got)
		}
	}
	if !slices.IsSorted(got) {
		t.Fatalf("timers fired in order %v, want ascending", got)
	}
}

func TestTimerNotEarly(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	fired := make(chan time.Time, 1)
	var timer Timer
	w.InitTimer(&timer, func() { fired <- time.Now() })
	for _, d := range []time.Duration{0, 1500 * time.Microsecond, 20 * time.Millisecond} {
		start := time.Now()
		timer.Reset(d)
		select {
		case at := <-fired:
			if late := at.Sub(start); late < d {
				t.Errorf("Reset(%v) fired after %v", d, late)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Reset(%v) never fired", d)
		}
	}
}

func TestTimerStop(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	var fired atomic.Int32
	var timer Timer
	w.InitTimer(&timer, func() { fired.Add(1) })
	if timer.Stop() {
		t.Fatal("Stop of a timer never armed = true")
	}
	timer.Reset(20 * time.Millisecond)
	if !timer.Stop() {
		t.Fatal("Stop of a pending timer = false")
	}
	if timer.Stop() {
		t.Fatal("second Stop = true")
	}
	time.Sleep(50 * time.Millisecond)
	if n := fired.Load(); n != 0 {
		t.Fatalf("stopped timer fired %d times", n)
	}

	// Once it has fired, Stop returns false.
	done := make(chan struct{})
	w.InitTimer(&timer, func() { close(done) })
	timer.Reset(time.Millisecond)
	wait(t, done, 5*time.Second, "timer")
	if timer.Stop() {
		t.Fatal("Stop after the timer fired = true")
	}
}

// TestTimerStopOverdue stops a timer whose deadline has passed while its worker was busy:
// Stop returns true and the timer never fires.
func TestTimerStopOverdue(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	var fired atomic.Bool
	var timer, other Timer
	w.InitTimer(&timer, func() { fired.Store(true) })
	stopped := make(chan bool, 1)
	// A timer that expires in the same pass, before it, stops it.
	w.InitTimer(&other, func() { stopped <- timer.Stop() })
	w.Add(NewTask(func() {
		other.Reset(0)
		timer.Reset(time.Millisecond)
		time.Sleep(5 * time.Millisecond) // both are overdue when the task returns
	}))
	select {
	case ok := <-stopped:
		if !ok {
			t.Fatal("Stop of an overdue timer = false")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timer never fired")
	}
	syncAll(t, g)
	time.Sleep(5 * time.Millisecond)
	syncAll(t, g)
	if fired.Load() {
		t.Fatal("timer fired after Stop returned true")
	}

	// And from another goroutine while the worker is held past the deadline.
	release := block(t, w)
	timer.Reset(time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if !timer.Stop() {
		t.Fatal("Stop of an overdue timer of a held worker = false")
	}
	release()
	syncAll(t, g)
	time.Sleep(5 * time.Millisecond)
	syncAll(t, g)
	if fired.Load() {
		t.Fatal("timer fired after Stop returned true")
	}
}

func TestTimerReset(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	fired := make(chan time.Time, 4)
	var timer Timer
	w.InitTimer(&timer, func() { fired <- time.Now() })
	timer.Reset(10 * time.Millisecond)
	start := time.Now()
	timer.Reset(60 * time.Millisecond) // re-arm: replaces the 10 ms
	select {
	case at := <-fired:
		if d := at.Sub(start); d < 60*time.Millisecond {
			t.Fatalf("re-armed timer fired after %v, want >= 60ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("re-armed timer never fired")
	}
	time.Sleep(20 * time.Millisecond)
	if len(fired) != 0 {
		t.Fatal("re-armed timer fired twice")
	}

	// Re-armed after it fired, it fires again.
	timer.Reset(time.Millisecond)
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("timer re-armed after firing never fired")
	}
}

func TestTimerPeriodic(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	done := make(chan struct{})
	n := 0
	var timer Timer
	w.InitTimer(&timer, func() {
		if n++; n < 5 {
			timer.Reset(0) // re-arms for the next tick, not this pass
		} else {
			close(done)
		}
	})
	timer.Reset(time.Millisecond)
	wait(t, done, 5*time.Second, "5 periodic firings")
}

// TestTimerWakesSleepingWorker arms timers from another goroutine while the worker
// sleeps: with no timer at all, and with only a later one.
func TestTimerWakesSleepingWorker(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	var late Timer
	w.InitTimer(&late, func() {})
	for _, name := range []string{"no timer", "a later timer"} {
		if name == "a later timer" {
			late.Reset(time.Hour)
		}
		time.Sleep(5 * time.Millisecond) // let the worker fall asleep
		done := make(chan struct{})
		var timer Timer
		w.InitTimer(&timer, func() { close(done) })
		timer.Reset(5 * time.Millisecond)
		wait(t, done, 500*time.Millisecond, "5ms timer with "+name+" pending")
	}
	late.Stop()
}

// TestWheel drives the wheel on its own, with ticks chosen by hand: timers more than a
// turn ahead, several in one slot, and a stall of several turns.
func TestWheel(t *testing.T) {
	var wh wheel
	ts := make([]Timer, 6)
	whens := []int64{5, 5 + wheelSize, 3, 5, 2 * wheelSize, 7 + 3*wheelSize}
	for i := range ts {
		wh.insert(&ts[i], whens[i])
	}
	fire := func(now int64) []int64 {
		wh.advance(now * int64(tick))
		var got []int64
		for wh.firing != nil {
			got = append(got, wh.firing.when)
			wh.firing.unlink()
		}
		return got
	}
	check := func(now int64, want ...int64) {
		t.Helper()
		if got := fire(now); !slices.Equal(got, want) {
			t.Fatalf("advance to tick %d fired %v, want %v", now, got, want)
		}
	}
	if d, ok := wh.next(0); !ok || d != 0 { // slot 0 holds 2*wheelSize
		t.Fatalf("next(0) = %d, %v; want 0, true", d, ok)
	}
	if d, ok := wh.next(6); !ok || d != 1 {
		t.Fatalf("next(6) = %d, %v; want 1, true", d, ok)
	}
	check(2)
	check(5, 3, 5, 5)
	check(wheelSize + 4)
	check(2*wheelSize, 5+wheelSize, 2*wheelSize)
	if wh.n != 1 {
		t.Fatalf("%d timers left, want 1", wh.n)
	}
	if ms := wh.sleep(2 * wheelSize * int64(tick)); ms != wheelSize+7 {
		t.Fatalf("sleep = %d ms, want %d", ms, wheelSize+7)
	}
	check(10*wheelSize, 7+3*wheelSize) // a stall of many turns
	if wh.n != 0 || wh.bits != [wheelSize / 64]uint64{} {
		t.Fatalf("wheel not empty: n %d", wh.n)
	}
	if ms := wh.sleep(0); ms != -1 {
		t.Fatalf("sleep with no timers = %d, want -1", ms)
	}
	// Stop in the middle of a slot and at its tail.
	for i := range 3 {
		wh.insert(&ts[i], 10*wheelSize+1)
	}
	wh.remove(&ts[1])
	wh.remove(&ts[2])
	wh.insert(&ts[2], 10*wheelSize+1)
	if got := fire(10*wheelSize + 1); len(got) != 2 || wh.n != 0 {
		t.Fatalf("after two removes and a re-insert: fired %v, %d left", got, wh.n)
	}
	// Removing a slot's earliest timer leaves its lower bound low: one wasted visit,
	// which makes it exact again.
	base := int64(10*wheelSize + 1)
	wh.insert(&ts[0], base+4)
	wh.insert(&ts[1], base+4+wheelSize)
	wh.remove(&ts[0])
	if ms := wh.sleep(base * int64(tick)); ms != 4 {
		t.Fatalf("sleep with a stale bound = %d ms, want 4", ms)
	}
	check(base + 4)
	if ms := wh.sleep((base + 4) * int64(tick)); ms != wheelSize {
		t.Fatalf("sleep after the wasted visit = %d ms, want %d", ms, wheelSize)
	}
}
