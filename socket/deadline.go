package socket

import (
	"sync"
	"sync/atomic"
	"time"
)

// A deadline is a read or write deadline: a channel closed when it passes (as in
// net.Pipe). It is made on the first Set*Deadline, so a socket that never sets one holds
// none.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
	t      time.Time     // the deadline; zero for none
}

// set arms the deadline; the zero time disarms it. A time in the past closes the channel
// at once, which wakes the goroutines waiting on it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // wait for the timer's function to close it
	}
	d.timer = nil
	d.t = t
	closed := isClosedChan(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		c := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(c) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// when returns the deadline, or the zero time.
func (d *deadline) when() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.t
}

// wait returns the channel closed at the deadline.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// deadlines holds a socket's two deadlines, each made on first use.
type deadlines struct {
	rd, wr atomic.Pointer[deadline]
}

func (ds *deadlines) get(p *atomic.Pointer[deadline], create bool) *deadline {
	if d := p.Load(); d != nil || !create {
		return d
	}
	d := &deadline{cancel: make(chan struct{})}
	if p.CompareAndSwap(nil, d) {
		return d
	}
	return p.Load()
}

// expired reports whether d has passed; a nil d never does.
func (d *deadline) expired() bool {
	return d != nil && isClosedChan(d.wait())
}

// channel returns the channel to select on: nil (never ready) for no deadline.
func (d *deadline) channel() <-chan struct{} {
	if d == nil {
		return nil
	}
	return d.wait()
}
