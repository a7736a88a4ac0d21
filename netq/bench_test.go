package netq

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkAddRun is the round trip of one task: Add from another goroutine, the worker
// wakes (or is awake), runs it, and the task signals back.
func BenchmarkAddRun(b *testing.B) {
	g, err := NewGroup(1)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	w := g.Worker(0)
	done := make(chan struct{}, 1)
	task := NewTask(func() { done <- struct{}{} })
	b.ReportAllocs()
	for b.Loop() {
		w.Add(task)
		<-done
	}
}

// BenchmarkAddThroughput adds batches of 256 distinct tasks from another goroutine, the
// last of which signals back: the cost per task when the queue is kept busy, with one
// wake-up per batch.
func BenchmarkAddThroughput(b *testing.B) {
	g, err := NewGroup(1)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	w := g.Worker(0)
	const batch = 256
	done := make(chan struct{}, 1)
	tasks := make([]Task, batch)
	for i := range tasks {
		tasks[i].Init(func() {})
	}
	tasks[batch-1].Init(func() { done <- struct{}{} })
	b.ReportAllocs()
	for i := 0; i < b.N; i += batch {
		for j := range min(batch, b.N-i) {
			w.Add(&tasks[batch-min(batch, b.N-i)+j])
		}
		<-done
	}
}

// BenchmarkAddSelf is a task re-adding itself on its worker: the loop's cost per task
// and iteration (with one epoll_wait(0) per iteration), as a hot flow yielding sees it.
func BenchmarkAddSelf(b *testing.B) {
	g, err := NewGroup(1)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	w := g.Worker(0)
	done := make(chan struct{})
	left := b.N
	var task Task
	task.Init(func() {
		if left--; left > 0 {
			w.Add(&task)
		} else {
			close(done)
		}
	})
	b.ReportAllocs()
	b.ResetTimer()
	w.Add(&task)
	<-done
}

// BenchmarkAddQueued is Add of a task that is already queued: the coalesced wake-up.
func BenchmarkAddQueued(b *testing.B) {
	g, err := NewGroup(1)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	w := g.Worker(0)
	held, release := make(chan struct{}), make(chan struct{})
	w.Add(NewTask(func() { close(held); <-release }))
	<-held
	task := NewTask(func() {})
	w.Add(task)
	b.ReportAllocs()
	for b.Loop() {
		w.Add(task)
	}
	close(release)
}

// BenchmarkTimerResetStop arms and disarms a timer from another goroutine, as an idle
// timeout re-armed by every move is.
func BenchmarkTimerResetStop(b *testing.B) {
	g, err := NewGroup(1)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	var timer Timer
	g.Worker(0).InitTimer(&timer, func() {})
	b.ReportAllocs()
	for b.Loop() {
		timer.Reset(time.Second)
		timer.Stop()
	}
}

// BenchmarkTimerReset re-arms a pending timer.
func BenchmarkTimerReset(b *testing.B) {
	g, err := NewGroup(1)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	var timer Timer
	g.Worker(0).InitTimer(&timer, func() {})
	b.ReportAllocs()
	for b.Loop() {
		timer.Reset(time.Second)
	}
	timer.Stop()
}

// BenchmarkReady is the round trip of an fd event: a write to a socketpair, the worker's
// Ready reads it and signals back.
func BenchmarkReady(b *testing.B) {
	g, err := NewGroup(1)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	w := g.Worker(0)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	done := make(chan struct{}, 1)
	var buf [64]byte
	if err := w.Register(fds[0], unix.EPOLLIN, HandlerFunc(func(uint32) {
		unix.Read(fds[0], buf[:])
		done <- struct{}{}
	})); err != nil {
		b.Fatal(err)
	}
	defer w.Unregister(fds[0])
	one := []byte{1}
	b.ReportAllocs()
	for b.Loop() {
		unix.Write(fds[1], one)
		<-done
	}
}
