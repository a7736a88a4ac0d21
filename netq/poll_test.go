package netq

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// events collects Ready calls of one registration.
type events chan uint32

func (e events) Ready(ev uint32) { e <- ev }

func (e events) expect(t *testing.T, bit uint32, what string) {
	t.Helper()
	select {
	case ev := <-e:
		if ev&bit == 0 {
			t.Fatalf("%s: events %#x, want bit %#x", what, ev, bit)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no event", what)
	}
}

func (e events) none(t *testing.T, what string) {
	t.Helper()
	select {
	case ev := <-e:
		t.Fatalf("%s: unexpected events %#x", what, ev)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestReady(t *testing.T) {
	g := group(t, 2)
	w := g.Worker(1)
	a, b := socketpair(t)
	ev := make(events, 16)
	onW := make(chan bool, 16)
	if err := w.Register(a, unix.EPOLLIN|unix.EPOLLRDHUP, HandlerFunc(func(e uint32) {
		onW <- w.OnWorker()
		ev.Ready(e)
	})); err != nil {
		t.Fatal(err)
	}
	unix.Write(b, []byte("x"))
	ev.expect(t, unix.EPOLLIN, "after a write")
	if !<-onW {
		t.Fatal("Ready ran off the worker")
	}
	// Edge-triggered: no new event while the byte stays unread, a new one for new data.
	ev.none(t, "data still unread")
	unix.Write(b, []byte("y"))
	ev.expect(t, unix.EPOLLIN, "after a second write")
	<-onW

	// Modify to EPOLLOUT: the socket is writable, so an event comes at once.
	if err := w.Modify(a, unix.EPOLLOUT); err != nil {
		t.Fatal(err)
	}
	ev.expect(t, unix.EPOLLOUT, "after Modify to EPOLLOUT")
	<-onW

	// The peer closes: HUP/RDHUP.
	if err := w.Modify(a, unix.EPOLLIN|unix.EPOLLRDHUP); err != nil {
		t.Fatal(err)
	}
	unix.Shutdown(b, unix.SHUT_WR)
	for deadline := time.After(5 * time.Second); ; { // Modify may first report the unread data
		select {
		case e := <-ev:
			<-onW
			if e&unix.EPOLLRDHUP == 0 {
				continue
			}
		case <-deadline:
			t.Fatal("no EPOLLRDHUP after the peer's shutdown")
		}
		break
	}
	if err := w.Unregister(a); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterErrors(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	a, _ := socketpair(t)
	h := make(events, 4)
	if err := w.Register(a, unix.EPOLLIN, h); err != nil {
		t.Fatal(err)
	}
	if err := w.Register(a, unix.EPOLLIN, h); !errors.Is(err, unix.EEXIST) {
		t.Errorf("second Register = %v, want EEXIST", err)
	}
	if err := w.Unregister(a); err != nil {
		t.Errorf("Unregister = %v", err)
	}
	if err := w.Unregister(a); !errors.Is(err, unix.ENOENT) {
		t.Errorf("second Unregister = %v, want ENOENT", err)
	}
	if err := w.Modify(a, unix.EPOLLIN); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Modify of an unregistered fd = %v, want ENOENT", err)
	}
	if err := w.Register(1<<20, unix.EPOLLIN, h); !errors.Is(err, unix.EBADF) {
		t.Errorf("Register of a bad fd = %v, want EBADF", err)
	}
	// fds beyond the fd table, and negative ones, are simply not registered.
	for _, fd := range []int{1 << 20, -1} {
		if err := w.Unregister(fd); !errors.Is(err, unix.ENOENT) {
			t.Errorf("Unregister(%d) = %v, want ENOENT", fd, err)
		}
		if err := w.Modify(fd, unix.EPOLLIN); !errors.Is(err, unix.ENOENT) {
			t.Errorf("Modify(%d) = %v, want ENOENT", fd, err)
		}
	}
	// A failed Register leaves nothing behind: the fd can be registered.
	if err := w.Register(a, unix.EPOLLIN, h); err != nil {
		t.Errorf("Register after a failed one = %v", err)
	}
	w.Unregister(a)
}

func TestUnregisterStopsDelivery(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	a, b := socketpair(t)
	ev := make(events, 16)
	if err := w.Register(a, unix.EPOLLIN, ev); err != nil {
		t.Fatal(err)
	}
	unix.Write(b, []byte("x"))
	ev.expect(t, unix.EPOLLIN, "registered")
	if err := w.Unregister(a); err != nil {
		t.Fatal(err)
	}
	unix.Write(b, []byte("y"))
	ev.none(t, "after Unregister")

	// The fd can be registered again, with a new handler, and the slot is reused.
	ev2 := make(events, 16)
	if err := w.Register(a, unix.EPOLLIN, ev2); err != nil {
		t.Fatal(err)
	}
	unix.Write(b, []byte("z"))
	ev2.expect(t, unix.EPOLLIN, "registered again")
	ev.none(t, "old handler after re-Register")
	w.Unregister(a)
}

// TestUnregisterInBatch unregisters, from one handler, an fd whose event is already in
// the same batch of fetched events: its Ready must not be called.
func TestUnregisterInBatch(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	for range 20 {
		a1, b1 := socketpair(t)
		a2, b2 := socketpair(t)
		var calls atomic.Int32
		fds := []int{a1, a2}
		for i, fd := range fds {
			other := fds[1-i]
			if err := w.Register(fd, unix.EPOLLIN, HandlerFunc(func(uint32) {
				calls.Add(1)
				if err := w.Unregister(other); err != nil {
					t.Errorf("Unregister from a handler: %v", err)
				}
			})); err != nil {
				t.Fatal(err)
			}
		}
		// Both become readable while the worker is held, so one epoll_wait fetches both.
		release := block(t, w)
		unix.Write(b1, []byte("x"))
		unix.Write(b2, []byte("x"))
		release()
		syncAll(t, g)
		time.Sleep(time.Millisecond)
		syncAll(t, g)
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d Ready calls, want 1: the second was unregistered by the first", n)
		}
		// Exactly one of them is still registered.
		e1, e2 := w.Unregister(a1), w.Unregister(a2)
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("Unregister after the batch: %v, %v; want exactly one ENOENT", e1, e2)
		}
	}
}

// TestUnregisterOffWorker unregisters from another goroutine while Ready runs: Unregister
// returns only after Ready has returned, and no Ready follows.
func TestUnregisterOffWorker(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	a, b := socketpair(t)
	in, returned := make(chan struct{}, 1), atomic.Bool{}
	var calls atomic.Int32
	if err := w.Register(a, unix.EPOLLIN, HandlerFunc(func(uint32) {
		calls.Add(1)
		returned.Store(false)
		in <- struct{}{}
		time.Sleep(20 * time.Millisecond)
		returned.Store(true)
	})); err != nil {
		t.Fatal(err)
	}
	unix.Write(b, []byte("x"))
	wait(t, in, 5*time.Second, "Ready")
	if err := w.Unregister(a); err != nil {
		t.Fatal(err)
	}
	if !returned.Load() {
		t.Fatal("Unregister returned while Ready was running")
	}
	unix.Write(b, []byte("y"))
	time.Sleep(20 * time.Millisecond)
	syncAll(t, g)
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d Ready calls, want 1", n)
	}
}

// TestCloseWithRegisteredFDs closes a group whose fds are still registered: Close does
// not close them, and they keep working.
func TestCloseWithRegisteredFDs(t *testing.T) {
	before := countFDs(t)
	g, err := NewGroup(2)
	if err != nil {
		t.Fatal(err)
	}
	a, b := socketpair(t)
	for i, fd := range []int{a, b} {
		if err := g.Worker(uint32(i)).Register(fd, unix.EPOLLIN|unix.EPOLLOUT, make(events, 16)); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Write(a, []byte("still open")); n != 10 || err != nil {
		t.Fatalf("write after Close: %d, %v", n, err)
	}
	var buf [16]byte
	if n, err := unix.Read(b, buf[:]); n != 10 || err != nil {
		t.Fatalf("read after Close: %d, %v", n, err)
	}
	if err := g.Worker(0).Unregister(a); err != nil {
		t.Errorf("Unregister after Close = %v, want nil", err)
	}
	if after := countFDs(t); after != before+2 {
		t.Errorf("fds: %d before NewGroup, %d after Close (2 of them the socketpair)", before, after)
	}
}

// TestHotTaskDoesNotStarve runs a task that re-adds itself after every turn, forever: a
// 5 ms timer and an fd event on the same worker must still be served promptly.
func TestHotTaskDoesNotStarve(t *testing.T) {
	g := group(t, 1)
	w := g.Worker(0)
	var stop atomic.Bool
	var turns atomic.Int64
	src, dst := make([]byte, Budget), make([]byte, Budget)
	var hot Task
	hot.Init(func() {
		copy(dst, src) // a turn's worth of work
		turns.Add(1)
		if !stop.Load() {
			w.Add(&hot)
		}
	})
	w.Add(&hot)
	defer func() {
		stop.Store(true)
		syncAll(t, g)
	}()
	for turns.Load() < 100 {
		time.Sleep(time.Millisecond)
	}

	// The hot task must keep running while we wait, or the test proves nothing.
	fired := make(chan struct{})
	var timer Timer
	var atFire int64
	w.InitTimer(&timer, func() {
		atFire = turns.Load()
		close(fired)
	})
	start, atStart := time.Now(), turns.Load()
	timer.Reset(5 * time.Millisecond)
	wait(t, fired, 50*time.Millisecond+5*time.Millisecond, "5ms timer beside a hot task")
	t.Logf("5ms timer fired after %v and %d hot turns", time.Since(start), atFire-atStart)
	if atFire == atStart {
		t.Error("the hot task did not run while the timer was pending")
	}

	a, b := socketpair(t)
	ev := make(events, 4)
	var atReady atomic.Int64
	if err := w.Register(a, unix.EPOLLIN, HandlerFunc(func(e uint32) {
		atReady.Store(turns.Load())
		ev <- e
	})); err != nil {
		t.Fatal(err)
	}
	start, atStart = time.Now(), turns.Load()
	unix.Write(b, []byte("x"))
	select {
	case <-ev:
		t.Logf("fd event delivered after %v and %d hot turns", time.Since(start), atReady.Load()-atStart)
	case <-time.After(50 * time.Millisecond):
		t.Fatal("fd event not delivered within 50ms beside a hot task")
	}
	w.Unregister(a)
}
