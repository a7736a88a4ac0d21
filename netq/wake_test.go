package netq

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestIdleCPU checks that a default-sized group with no traffic sleeps: after a burst of
// work (after which a loop that spins before sleeping would spin) and with a far timer
// armed on every worker (so each sleeps with a timeout), the whole process uses under 2%
// of a core over a second. The goal is well under 0.5%; the slack is for the test
// binary's own runtime on a loaded machine, while a spinning worker uses a whole core.
func TestIdleCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a second")
	}
	g := group(t, 0)
	timers := make([]Timer, g.Len())
	for i, w := range g.Workers() {
		w.InitTimer(&timers[i], func() {})
		timers[i].Reset(time.Minute)
		done := make(chan struct{}, 1)
		task := NewTask(func() { done <- struct{}{} })
		for range 1000 {
			w.Add(task)
			<-done
		}
	}
	syncAll(t, g)
	time.Sleep(50 * time.Millisecond)
	const span = time.Second
	cpu, t0 := cpuNanos(t), time.Now()
	time.Sleep(span)
	used, elapsed := cpuNanos(t)-cpu, time.Since(t0)
	share := float64(used) / float64(elapsed)
	t.Logf("%d idle workers: %v of CPU in %v (%.3f%% of a core)", g.Len(), time.Duration(used), elapsed.Round(time.Millisecond), 100*share)
	if share > 0.02 {
		t.Errorf("idle group used %.2f%% of a core, want < 2%% (the aim is < 0.5%%)", 100*share)
	}
	for i := range timers {
		timers[i].Stop()
	}
}

// TestWakeNoLoss races Add and Reset from several goroutines against workers deciding to
// sleep: every task and timer must run, promptly. A lost wake-up leaves a worker asleep
// with work queued, and the wait below times out.
func TestWakeNoLoss(t *testing.T) {
	g := group(t, 2)
	const pingers, rounds = 4, 500
	var wg sync.WaitGroup
	errs := make(chan string, pingers)
	for p := range pingers {
		wg.Go(func() {
			w := g.Worker(uint32(p))
			done := make(chan struct{}, 1)
			task := NewTask(func() { done <- struct{}{} })
			var timer Timer
			w.InitTimer(&timer, func() { done <- struct{}{} })
			for i := range rounds {
				what := "task"
				switch i % 3 {
				case 0, 1:
					w.Add(task)
				case 2:
					what = "timer"
					timer.Reset(0)
				}
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					errs <- what + " not run within 5s: lost wake-up"
					return
				}
				if i%4 == 0 { // let the worker fall asleep, or be about to
					time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestWakeEarlierTimer arms a far timer, lets the worker fall asleep until it, then arms
// an earlier one from another goroutine: the worker must wake for the earlier one, not
// sleep until the far one.
func TestWakeEarlierTimer(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	var far, near Timer
	w.InitTimer(&far, func() {})
	fired := make(chan struct{})
	w.InitTimer(&near, func() { close(fired) })
	far.Reset(time.Hour)
	syncAll(t, g)
	time.Sleep(10 * time.Millisecond) // asleep for an hour
	t0 := time.Now()
	near.Reset(5 * time.Millisecond)
	wait(t, fired, 5*time.Second, "near timer")
	if d := time.Since(t0); d < 5*time.Millisecond {
		t.Errorf("5ms timer fired after %v", d)
	}
	far.Stop()
}

// TestCloseSleeping closes a group whose workers sleep, one until a far timer, one with
// none pending: Close must wake them, wait for their loops and close their fds (group
// checks the fds and goroutines at the end of the test).
func TestCloseSleeping(t *testing.T) {
	g, err := NewGroup(2)
	if err != nil {
		t.Fatal(err)
	}
	var far Timer
	g.Worker(0).InitTimer(&far, func() {})
	far.Reset(time.Hour)
	time.Sleep(10 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		g.Close()
		close(closed)
	}()
	wait(t, closed, 5*time.Second, "Close of sleeping workers")
	for _, w := range g.Workers() {
		if w.epfd != -1 {
			t.Errorf("worker %d: epfd %d still open after Close", w.ID(), w.epfd)
		}
	}
	if w := g.Worker(0); w.Add(NewTask(func() {})) {
		t.Error("Add after Close queued a task")
	}
}
