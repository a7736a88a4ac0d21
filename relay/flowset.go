package relay

import "sync"

// A flowSet is a relay's open flows, the registry the relay's counts and its shutdown
// read, as the kernel keeps a protocol's PCBs on a list: Shutdown resets what is on it
// when the grace period runs out, /metrics counts it and reads the live bytes of its
// flows, and it is the gate that refuses new flows once the server has shut down or the
// relay was retired. The bytes of flows that have ended are totalled here too, under the
// same lock as the list, so that a flow moving from the list to the totals is never
// counted twice nor missed by a snapshot. It is kept by relay name across reloads.
type flowSet struct {
	mu      sync.Mutex
	list    flowList
	bytes   [2]int64 // moved by flows that have ended, by direction
	closed  bool     // the server shut down, or the relay is retired: no flow may start
	stopped bool     // the relay stopped: retire once its last flow ends
}

// add puts f on the set. It returns false if the set is closed: f must then be closed.
func (fs *flowSet) add(f *flow) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return false
	}
	fs.list.insert(f)
	return true
}

// remove takes an ended flow off the set; its bytes move to the totals.
func (fs *flowSet) remove(f *flow) {
	moved := [2]int64{f.moved(toTarget), f.moved(toClient)}
	fs.mu.Lock()
	fs.list.remove(f)
	fs.bytes[0] += moved[0]
	fs.bytes[1] += moved[1]
	fs.mu.Unlock()
}

// live returns the number of open flows and the bytes moved by every flow, ended or
// open, by direction.
func (fs *flowSet) live() (int, [2]int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	b := fs.bytes
	for f := fs.list.head; f != nil; f = f.next {
		b[toTarget] += f.moved(toTarget)
		b[toClient] += f.moved(toClient)
	}
	return fs.list.n, b
}

// open returns the number of open flows.
func (fs *flowSet) open() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.list.n
}

// shut closes the set to new flows and returns the open ones.
func (fs *flowSet) shut() []*flow {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.closed = true
	out := make([]*flow, 0, fs.list.n)
	for f := fs.list.head; f != nil; f = f.next {
		out = append(out, f)
	}
	return out
}

// stop marks the relay stopped, to be retired once its flows have ended.
func (fs *flowSet) stop() {
	fs.mu.Lock()
	fs.stopped = true
	fs.mu.Unlock()
}

// restart marks the relay running again, if a relay of its name starts before it was
// retired.
func (fs *flowSet) restart() {
	fs.mu.Lock()
	fs.stopped = false
	fs.mu.Unlock()
}

// retire reports whether a stopped relay's last flow has ended; if so the set is closed
// to new flows (a client its listener accepted as it closed is refused), and the relay's
// counts may be forgotten.
func (fs *flowSet) retire() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !fs.stopped || fs.list.n != 0 {
		return false
	}
	fs.closed = true
	return true
}

// A flowList is a relay's open flows, linked through the flows themselves (as the
// kernel's PCB lists are), so that an open flow costs its relay two pointers, not a map
// entry.
type flowList struct {
	head *flow
	n    int
}

func (l *flowList) insert(f *flow) {
	f.prev, f.next = nil, l.head
	if l.head != nil {
		l.head.prev = f
	}
	l.head = f
	l.n++
}

func (l *flowList) remove(f *flow) {
	if f.prev == nil && l.head != f {
		return // not on the list
	}
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		l.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	}
	f.prev, f.next = nil, nil
	l.n--
}
