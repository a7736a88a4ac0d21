package netq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestAddIdempotent(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	var runs atomic.Int32
	task := NewTask(func() { runs.Add(1) })

	release := block(t, w)
	if !w.Add(task) {
		t.Fatal("first Add = false")
	}
	for i := range 100 {
		if w.Add(task) {
			t.Fatalf("Add #%d of a queued task = true", i+2)
		}
	}
	release()
	syncAll(t, g)
	if n := runs.Load(); n != 1 {
		t.Fatalf("task queued by 101 Adds ran %d times, want 1", n)
	}
	// Once it has run it can be queued again.
	if !w.Add(task) {
		t.Fatal("Add after the task ran = false")
	}
	syncAll(t, g)
	if n := runs.Load(); n != 2 {
		t.Fatalf("ran %d times, want 2", n)
	}
}

func TestAddQueuedElsewhere(t *testing.T) {
	g := group(t, 2)
	w0, w1 := g.Worker(0), g.Worker(1)
	var runs atomic.Int32
	task := NewTask(func() { runs.Add(1) })
	release := block(t, w0)
	if !w0.Add(task) || w1.Add(task) {
		t.Fatal("a task queued on worker 0 could be added to worker 1")
	}
	if w1.Del(task) {
		t.Fatal("Del on worker 1 removed a task queued on worker 0")
	}
	release()
	syncAll(t, g)
	if n := runs.Load(); n != 1 {
		t.Fatalf("ran %d times, want 1", n)
	}
}

func TestAddUninitializedPanics(t *testing.T) {
	g := group(t, 1)
	defer func() {
		if recover() == nil {
			t.Error("Add of a zero Task did not panic")
		}
	}()
	var task Task
	g.Worker(0).Add(&task)
}

func TestDel(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	var ran [3]atomic.Bool
	var tasks [3]Task
	for i := range tasks {
		tasks[i].Init(func() { ran[i].Store(true) })
	}
	if w.Del(&tasks[0]) {
		t.Fatal("Del of a task never queued = true")
	}

	release := block(t, w)
	for i := range tasks {
		w.Add(&tasks[i])
	}
	if !w.Del(&tasks[1]) {
		t.Fatal("Del of a queued task = false")
	}
	if w.Del(&tasks[1]) {
		t.Fatal("second Del = true")
	}
	release()
	syncAll(t, g)
	if !ran[0].Load() || ran[1].Load() || !ran[2].Load() {
		t.Fatalf("ran = %v %v %v, want true false true", ran[0].Load(), ran[1].Load(), ran[2].Load())
	}

	// A task in the batch being run can still be removed by an earlier task of the batch.
	var late atomic.Bool
	lateTask := NewTask(func() { late.Store(true) })
	var delOK atomic.Bool
	release = block(t, w)
	w.Add(NewTask(func() { delOK.Store(w.Del(lateTask)) }))
	w.Add(lateTask)
	release()
	syncAll(t, g)
	if !delOK.Load() || late.Load() {
		t.Fatalf("Del from an earlier task of the same batch: Del = %v, task ran = %v", delOK.Load(), late.Load())
	}

	// Del of a running task does nothing.
	started, finish := make(chan struct{}), make(chan struct{})
	running := NewTask(func() {
		close(started)
		<-finish
	})
	w.Add(running)
	<-started
	if w.Del(running) {
		t.Fatal("Del of a running task = true")
	}
	close(finish)
}

func TestManyGoroutines(t *testing.T) {
	g := group(t, 2)
	const goroutines, perG = 8, 500
	runs := make([]atomic.Int32, goroutines*perG)
	tasks := make([]Task, goroutines*perG)
	for i := range tasks {
		tasks[i].Init(func() { runs[i].Add(1) })
	}
	var wg sync.WaitGroup
	for p := range goroutines {
		wg.Go(func() {
			for i := p * perG; i < (p+1)*perG; i++ {
				w := g.Worker(uint32(i))
				if !w.Add(&tasks[i]) {
					t.Errorf("Add of task %d = false", i)
				}
				w.Add(&tasks[i]) // again: queued or already run, never twice queued
			}
		})
	}
	wg.Wait()
	syncAll(t, g)
	for i := range runs {
		if n := runs[i].Load(); n < 1 || n > 2 {
			t.Fatalf("task %d ran %d times, want 1 or 2 (added twice)", i, n)
		}
	}
}

func TestManyGoroutinesOnce(t *testing.T) {
	g := group(t, 2)
	w := g.Worker(1)
	const goroutines, perG = 8, 500
	runs := make([]atomic.Int32, goroutines*perG)
	tasks := make([]Task, goroutines*perG)
	for i := range tasks {
		tasks[i].Init(func() { runs[i].Add(1) })
	}
	// All goroutines add all tasks while the worker is held: each must run exactly once.
	release := block(t, w)
	var wg sync.WaitGroup
	var added atomic.Int32
	for range goroutines {
		wg.Go(func() {
			for i := range tasks {
				if w.Add(&tasks[i]) {
					added.Add(1)
				}
			}
		})
	}
	wg.Wait()
	release()
	syncAll(t, g)
	if n := added.Load(); n != int32(len(tasks)) {
		t.Errorf("%d Adds returned true, want %d", n, len(tasks))
	}
	for i := range runs {
		if n := runs[i].Load(); n != 1 {
			t.Fatalf("task %d ran %d times, want 1", i, n)
		}
	}
}

func TestFIFO(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	var order []int // touched only on w
	tasks := make([]Task, 1000)
	for i := range tasks {
		tasks[i].Init(func() { order = append(order, i) })
	}
	// Half while the worker runs them as they come, half queued up behind a held worker.
	for i := range tasks[:500] {
		w.Add(&tasks[i])
	}
	release := block(t, w)
	for i := range tasks[500:] {
		w.Add(&tasks[500+i])
	}
	release()
	syncAll(t, g)
	if len(order) != len(tasks) {
		t.Fatalf("%d tasks ran, want %d", len(order), len(tasks))
	}
	for i, v := range order {
		if v != i {
			t.Fatalf("task %d ran in position %d", v, i)
		}
	}
}

func TestBarrier(t *testing.T) {
	g := group(t, 2)
	w := g.Worker(0)

	// From outside: after every task queued before it.
	var count int // touched only on w
	for range 100 {
		w.Add(NewTask(func() { count++ }))
	}
	done := make(chan struct{})
	w.Barrier(func() {
		if count != 100 {
			t.Errorf("barrier ran after %d of 100 tasks", count)
		}
		close(done)
	})
	wait(t, done, 5*time.Second, "barrier from outside")

	// From a task of the same worker: queued behind the tasks that task added.
	done = make(chan struct{})
	w.Add(NewTask(func() {
		ran := false
		w.Add(NewTask(func() { ran = true }))
		w.Barrier(func() {
			if !ran {
				t.Error("barrier on own worker ran before the task queued before it")
			}
			close(done)
		})
	}))
	wait(t, done, 5*time.Second, "barrier on own worker")
}

func TestBarrierCrossWorkers(t *testing.T) {
	g := group(t, 2)
	w0, w1 := g.Worker(0), g.Worker(1)
	for range 100 {
		var start sync.WaitGroup
		start.Add(2)
		done0, done1 := make(chan struct{}), make(chan struct{})
		// Each worker, at the same moment, puts a barrier on the other.
		w0.Add(NewTask(func() {
			start.Done()
			start.Wait()
			w1.Barrier(func() { close(done1) })
		}))
		w1.Add(NewTask(func() {
			start.Done()
			start.Wait()
			w0.Barrier(func() { close(done0) })
		}))
		wait(t, done0, 5*time.Second, "barrier on worker 0 from worker 1")
		wait(t, done1, 5*time.Second, "barrier on worker 1 from worker 0")
	}
}

func TestSync(t *testing.T) {
	g := group(t, 2)
	other := group(t, 1)
	w0, w1 := g.Worker(0), g.Worker(1)

	// Sync waits for the tasks queued before it.
	var ran atomic.Bool
	release := block(t, w0)
	w0.Add(NewTask(func() { ran.Store(true) }))
	go func() {
		time.Sleep(10 * time.Millisecond)
		release()
	}()
	if err := w0.Sync(context.Background()); err != nil || !ran.Load() {
		t.Fatalf("Sync = %v, task ran %v; want nil, true", err, ran.Load())
	}

	// From any worker's task, timer or handler, of any group: ErrOnWorker.
	errs := make(chan error, 16)
	for _, from := range []*Worker{w0, w1, other.Worker(0)} {
		for _, target := range []*Worker{w0, w1, other.Worker(0)} {
			from.Add(NewTask(func() { errs <- target.Sync(context.Background()) }))
			if err := <-errs; err != ErrOnWorker {
				t.Errorf("Sync(worker %d) from a task of worker %d = %v, want ErrOnWorker", target.ID(), from.ID(), err)
			}
		}
	}
	var timer Timer
	w1.InitTimer(&timer, func() { errs <- w0.Sync(context.Background()) })
	timer.Reset(0)
	if err := <-errs; err != ErrOnWorker {
		t.Errorf("Sync from a timer = %v, want ErrOnWorker", err)
	}
	a, b := socketpair(t)
	if err := w1.Register(a, unix.EPOLLIN, HandlerFunc(func(uint32) { errs <- w1.Sync(context.Background()) })); err != nil {
		t.Fatal(err)
	}
	unix.Write(b, []byte{1})
	if err := <-errs; err != ErrOnWorker {
		t.Errorf("Sync from a handler = %v, want ErrOnWorker", err)
	}
	if err := w1.Unregister(a); err != nil {
		t.Fatal(err)
	}

	// Cancelled: ctx's error, and the Sync's task is withdrawn.
	release = block(t, w0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := w0.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Sync with an expiring ctx = %v, want DeadlineExceeded", err)
	}
	if n := w0.queueLen(); n != 0 {
		t.Errorf("%d tasks left queued by a cancelled Sync", n)
	}
	release()
}

// TestBusyWorkerDoesNotWake checks that tasks added on a busy worker, by itself, do not
// write the eventfd: only an Add that finds the loop asleep does.
func TestBusyWorkerDoesNotWake(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	syncAll(t, g)
	w.mu.Lock()
	before := w.wakes
	w.mu.Unlock()
	done := make(chan struct{})
	n := 0
	var hot Task
	hot.Init(func() {
		if n++; n < 10000 {
			w.Add(&hot)
		} else {
			close(done)
		}
	})
	w.Add(&hot) // this one may wake the worker
	wait(t, done, 10*time.Second, "10000 self-adds")
	w.mu.Lock()
	wakes := w.wakes - before
	w.mu.Unlock()
	if wakes > 1 {
		t.Errorf("10000 Adds on a busy worker wrote the eventfd %d times, want at most 1", wakes)
	}
}

// TestAddSparseRunsFirst: tasks added with AddSparse run before those added with Add in
// the same iteration, each queue in its own order, and a task queued on one queue is not
// queued again on the other; Del removes a sparse task.
func TestAddSparseRunsFirst(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	var mu sync.Mutex
	var order []string
	mk := func(name string) *Task {
		return NewTask(func() { mu.Lock(); order = append(order, name); mu.Unlock() })
	}
	bulk1, bulk2, sparse1, sparse2, gone := mk("bulk1"), mk("bulk2"), mk("sparse1"), mk("sparse2"), mk("gone")

	release := block(t, w)
	w.Add(bulk1)
	w.Add(bulk2)
	if !w.AddSparse(sparse1) || !w.AddSparse(sparse2) || !w.AddSparse(gone) {
		t.Fatal("AddSparse of a new task = false")
	}
	if w.AddSparse(bulk1) || w.Add(sparse1) {
		t.Fatal("a task queued on one queue was queued again on the other")
	}
	if !w.Del(gone) {
		t.Fatal("Del of a sparse task = false")
	}
	release()
	syncAll(t, g)
	want := "[sparse1 sparse2 bulk1 bulk2]"
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(order); got != want {
		t.Fatalf("ran %s, want %s", got, want)
	}
}
