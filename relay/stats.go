package relay

import (
	"errors"
	"net"
	"sync"
	"syscall"

	"github.com/softnet-go/softnet/socket"
)

// Directions of a flow, as metrics label them.
const (
	toTarget = 0 // client to target
	toClient = 1 // target to client
)

var dirNames = [2]string{"to_target", "to_client"}

// relayStats are the counts of one relay, kept by name across reloads. The live byte
// counts of open flows are read through the flows themselves.
type relayStats struct {
	name string

	mu       sync.Mutex
	active   flowList // the open flows
	accepted int64
	failed   map[string]int64    // flows that never started, by reason
	refused  map[string]int64    // clients closed at once over a cap, by reason
	tfailed  map[string]int64    // target dials that failed, by target
	dropped  map[string]int64    // UDP datagrams the relay itself could not pass on, by reason
	bytes    [2]int64            // bytes of flows that have ended, by direction
	endings  [2]map[string]int64 // splice endings by direction and reason
	closed   bool                // the server shut down, or the relay is retired: no flow may start
	stopped  bool                // the relay stopped: retire once its last flow ends
}

// stop marks the relay stopped, its counts to be retired once its flows have ended.
func (s *relayStats) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

// restart marks the relay running again, if a relay of its name starts before its
// counts were retired.
func (s *relayStats) restart() {
	s.mu.Lock()
	s.stopped = false
	s.mu.Unlock()
}

// retire reports whether a stopped relay's last flow has ended; if so, its counts are
// closed to new flows (a client its listener accepted as it closed is refused) and may
// be forgotten.
func (s *relayStats) retire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped || s.active.n != 0 {
		return false
	}
	s.closed = true
	return true
}

// rename gives the counts of a relay renamed in place their new name.
func (s *relayStats) rename(name string) {
	s.mu.Lock()
	s.name = name
	s.mu.Unlock()
}

func newRelayStats(name string) *relayStats {
	return &relayStats{
		name:    name,
		failed:  map[string]int64{},
		refused: map[string]int64{},
		tfailed: map[string]int64{},
		dropped: map[string]int64{},
		endings: [2]map[string]int64{{}, {}},
	}
}

// accept counts a client accepted (TCP) or a new client address (UDP).
func (s *relayStats) accept() {
	s.mu.Lock()
	s.accepted++
	s.mu.Unlock()
}

// add makes f an open flow once its target is connected. It returns false if the server
// has shut down: f must then be closed.
func (s *relayStats) add(f *flow) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active.insert(f)
	return true
}

// acceptFlow is accept and add under one lock, for a TCP client that becomes an open
// flow as it is accepted (its connect is part of the flow): one lock per connection on
// the relay's counts, not two.
func (s *relayStats) acceptFlow(f *flow) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepted++
	if s.closed {
		return false
	}
	s.active.insert(f)
	return true
}

// remove ends a flow's part in the counts: its bytes move to the totals.
func (s *relayStats) remove(f *flow) {
	moved := [2]int64{f.moved(toTarget), f.moved(toClient)}
	s.mu.Lock()
	s.active.remove(f)
	s.bytes[0] += moved[0]
	s.bytes[1] += moved[1]
	s.mu.Unlock()
}

func (s *relayStats) ending(dir int, err error) {
	s.mu.Lock()
	s.endings[dir][reason(err)]++
	s.mu.Unlock()
}

func (s *relayStats) fail(why string) {
	s.mu.Lock()
	s.failed[why]++
	s.mu.Unlock()
}

// errNoFlow is the drop reason of a datagram whose client could get no flow.
var errNoFlow = errors.New("no flow for the client")

// drop counts a UDP datagram the relay read from a client but could not send on (the
// first datagrams of a new flow go through the listener), by reason: nobufs at the
// memory limit, no_flow when the client's flow could not be set up, or error.
func (s *relayStats) drop(err error) {
	why := "error"
	switch {
	case errors.Is(err, syscall.ENOBUFS):
		why = "nobufs"
	case err == errNoFlow:
		why = "no_flow"
	}
	s.mu.Lock()
	s.dropped[why]++
	s.mu.Unlock()
}

// refuse counts a client refused over a cap, by reason.
func (s *relayStats) refuse(why string) {
	s.mu.Lock()
	s.refused[why]++
	s.mu.Unlock()
}

func (s *relayStats) targetFailed(target string) {
	s.mu.Lock()
	s.tfailed[target]++
	s.mu.Unlock()
}

// snapshot is a copy of a relay's counts, with open flows' bytes included.
type snapshot struct {
	name     string
	accepted int64
	active   int
	failed   map[string]int64
	refused  map[string]int64 // by reason, every reason present
	tfailed  map[string]int64
	dropped  map[string]int64
	bytes    [2]int64
	endings  [2]map[string]int64
}

func (s *relayStats) snapshot() snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := snapshot{
		name:     s.name,
		accepted: s.accepted,
		active:   s.active.n,
		failed:   clone(s.failed),
		refused:  clone(s.refused),
		tfailed:  clone(s.tfailed),
		dropped:  clone(s.dropped),
		bytes:    s.bytes,
		endings:  [2]map[string]int64{clone(s.endings[0]), clone(s.endings[1])},
	}
	for _, why := range refusedReasons {
		sn.refused[why] += 0
	}
	for f := s.active.head; f != nil; f = f.next {
		sn.bytes[0] += f.moved(toTarget)
		sn.bytes[1] += f.moved(toClient)
	}
	return sn
}

// shut refuses every flow that has not started yet and returns the open ones.
func (s *relayStats) shut() []*flow {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	fs := make([]*flow, 0, s.active.n)
	for f := s.active.head; f != nil; f = f.next {
		fs = append(fs, f)
	}
	return fs
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

func clone(m map[string]int64) map[string]int64 {
	c := make(map[string]int64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// reason names how one direction of a flow ended, for logs and metrics.
func reason(err error) string {
	switch {
	case err == nil:
		return "eof"
	case errors.Is(err, errClosed):
		return "closed"
	case errors.Is(err, syscall.EFBIG):
		return "max"
	case err == socket.ErrIdle:
		return "idle"
	case errors.Is(err, syscall.ETIMEDOUT):
		return "timeout" // keepalive or retransmissions gave up on the peer
	case errors.Is(err, syscall.EPIPE):
		return "pipe"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EMSGSIZE):
		return "msgsize"
	case errors.Is(err, syscall.ENOBUFS):
		return "nobufs"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	return "error"
}
