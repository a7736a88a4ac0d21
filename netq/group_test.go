package netq

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestNewGroupSize(t *testing.T) {
	g := group(t, 0)
	if g.Len() != runtime.GOMAXPROCS(0) {
		t.Errorf("NewGroup(0).Len() = %d, want GOMAXPROCS %d", g.Len(), runtime.GOMAXPROCS(0))
	}
	g3 := group(t, 3)
	for i, w := range g3.Workers() {
		if w.ID() != i || w.Group() != g3 {
			t.Errorf("Workers()[%d]: ID %d, group %p; want %d, %p", i, w.ID(), w.Group(), i, g3)
		}
	}
}

func TestWorkerMapping(t *testing.T) {
	g := group(t, 3)
	ws := g.Workers()
	for _, c := range []struct {
		flowid uint32
		want   int
	}{{0, 0}, {1, 1}, {2, 2}, {3, 0}, {4, 1}, {math.MaxUint32, math.MaxUint32 % 3}} {
		if got := g.Worker(c.flowid); got != ws[c.want] {
			t.Errorf("Worker(%d) = worker %d, want %d", c.flowid, got.ID(), c.want)
		}
	}
}

func TestCurrent(t *testing.T) {
	g := group(t, 2)
	if Current() != nil {
		t.Fatal("Current() != nil on the test goroutine")
	}
	for _, w := range g.Workers() {
		if w.OnWorker() {
			t.Fatalf("worker %d: OnWorker on the test goroutine", w.ID())
		}
		done, goDone := make(chan struct{}), make(chan struct{})
		w.Add(NewTask(func() {
			defer close(done)
			if Current() != w || !w.OnWorker() {
				t.Errorf("in a task of worker %d: Current() = %v, OnWorker %v", w.ID(), Current(), w.OnWorker())
			}
			other := g.Worker(uint32(w.ID() + 1))
			if other.OnWorker() {
				t.Errorf("in a task of worker %d: worker %d says OnWorker", w.ID(), other.ID())
			}
			go func() { // a goroutine started by a task is not on the worker
				defer close(goDone)
				if Current() != nil {
					t.Errorf("goroutine started by a task: Current() = worker %d", Current().ID())
				}
			}()
		}))
		wait(t, done, 5*time.Second, "task")
		wait(t, goDone, 5*time.Second, "goroutine")
	}
}

func TestClose(t *testing.T) {
	before := countFDs(t)
	g, err := NewGroup(2)
	if err != nil {
		t.Fatal(err)
	}
	w := g.Worker(0)

	// Close on one of its own workers must refuse rather than wait for itself.
	errc := make(chan error)
	w.Add(NewTask(func() { errc <- g.Close() }))
	if err := <-errc; err != ErrOnWorker {
		t.Fatalf("Close on own worker = %v, want ErrOnWorker", err)
	}

	// A task queued behind a blocked worker when Close begins never runs, and a Sync
	// waiting for it returns ErrClosed.
	release := block(t, w)
	ran := false
	pending := NewTask(func() { ran = true })
	w.Add(pending)
	var timer Timer
	w.InitTimer(&timer, func() { ran = true })
	timer.Reset(time.Hour)
	syncErr := make(chan error)
	go func() { syncErr <- w.Sync(context.Background()) }()
	for w.queueLen() < 2 { // pending and Sync's task
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() {
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		close(closed)
	}()
	for !w.stopping() {
		time.Sleep(time.Millisecond)
	}
	release()
	wait(t, closed, 5*time.Second, "Close")
	if err := <-syncErr; err != ErrClosed {
		t.Errorf("Sync across Close = %v, want ErrClosed", err)
	}
	if ran {
		t.Error("a task or timer pending at Close ran")
	}
	if timer.Stop() {
		t.Error("Stop after Close = true: the timer is still pending")
	}

	// Idempotent, and everything refuses afterwards.
	if err := g.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if w.Add(pending) {
		t.Error("Add after Close = true")
	}
	if w.Add(NewTask(func() {})) {
		t.Error("Add of a fresh task after Close = true")
	}
	if err := w.Sync(context.Background()); err != ErrClosed {
		t.Errorf("Sync after Close = %v, want ErrClosed", err)
	}
	a, _ := socketpair(t)
	if err := w.Register(a, unix.EPOLLIN, HandlerFunc(func(uint32) {})); err != ErrClosed {
		t.Errorf("Register after Close = %v, want ErrClosed", err)
	}
	if err := w.Modify(a, unix.EPOLLIN); err != ErrClosed {
		t.Errorf("Modify after Close = %v, want ErrClosed", err)
	}
	timer.Reset(time.Millisecond) // does nothing, must not panic
	if timer.Stop() {
		t.Error("Stop after Reset after Close = true")
	}
	if after := countFDs(t); after != before+2 { // +2: the socketpair
		t.Errorf("fds: %d before NewGroup, %d after Close (2 of them the socketpair)", before, after)
	}
}

// stopping reports whether Close has told w to stop (tests only).
func (w *Worker) stopping() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// queueLen counts the tasks waiting in w's queue (tests only).
func (w *Worker) queueLen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for t := w.queue.next; t != &w.queue; t = t.next {
		n++
	}
	return n
}

func TestDefault(t *testing.T) {
	if os.Getenv("NETQ_TEST_DEFAULT") == "1" {
		// In a child process, since the default group is never closed.
		g := Default()
		if g != Default() || g.Len() != runtime.GOMAXPROCS(0) {
			t.Fatalf("Default() not one group of GOMAXPROCS workers")
		}
		if err := g.Worker(7).Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("default group ok\n")
		os.Exit(0) // skip TestMain's leak check: the default group's loops run on
	}
	out, err := subprocess(t, "TestDefault", "NETQ_TEST_DEFAULT=1")
	if err != nil || !strings.Contains(string(out), "default group ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestPanicCrashes(t *testing.T) {
	if os.Getenv("NETQ_TEST_PANIC") == "1" {
		g, err := NewGroup(1)
		if err != nil {
			t.Fatal(err)
		}
		g.Worker(0).Add(NewTask(func() { panic("boom in a task") }))
		time.Sleep(10 * time.Second)
		os.Exit(0) // not reached: the panic kills the process
	}
	out, err := subprocess(t, "TestPanicCrashes", "NETQ_TEST_PANIC=1")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "panic: boom in a task") {
		t.Fatalf("child: %v, want a crash with the panic message\n%s", err, out)
	}
}

// TestNoAllocs checks that the loop allocates nothing in steady state: running a task,
// firing a timer, delivering an fd event.
func TestNoAllocs(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	done := make(chan struct{}, 1)
	task := NewTask(func() { done <- struct{}{} })
	var timer Timer
	w.InitTimer(&timer, func() { done <- struct{}{} })
	a, b := socketpair(t)
	var buf [64]byte
	if err := w.Register(a, unix.EPOLLIN, HandlerFunc(func(uint32) {
		unix.Read(a, buf[:])
		done <- struct{}{}
	})); err != nil {
		t.Fatal(err)
	}
	one := []byte{1}
	for name, f := range map[string]func(){
		"task":  func() { w.Add(task); <-done },
		"timer": func() { timer.Reset(0); <-done },
		"fd":    func() { unix.Write(b, one); <-done },
	} {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
	if err := w.Unregister(a); err != nil {
		t.Fatal(err)
	}
}
