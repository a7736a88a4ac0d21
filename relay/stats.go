package relay

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/softnet-go/softnet/socket"
)

// Directions of a flow, as metrics label them.
const (
	toTarget = 0 // client to target
	toClient = 1 // target to client
)

var dirNames = [2]string{"to_target", "to_client"}

// relayStats are the counts of one relay's events, kept by name across reloads; its open
// flows and their bytes are its flowSet's.
type relayStats struct {
	accepted atomic.Int64 // clients accepted (TCP), new client addresses (UDP)

	mu      sync.Mutex
	name    string
	failed  map[string]int64    // flows that never started, by reason
	refused map[string]int64    // clients closed at once over a cap, by reason
	tfailed map[string]int64    // target dials that failed, by target
	dropped map[string]int64    // UDP datagrams the relay itself could not pass on, by reason
	endings [2]map[string]int64 // splice endings by direction and reason
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
func (s *relayStats) accept() { s.accepted.Add(1) }

// ending counts the end of one direction of a flow, and returns its reason.
func (s *relayStats) ending(dir int, err error) string {
	why := reason(err)
	s.mu.Lock()
	s.endings[dir][why]++
	s.mu.Unlock()
	return why
}

func (s *relayStats) fail(why string) {
	s.mu.Lock()
	s.failed[why]++
	s.mu.Unlock()
}

// The reasons of the labelled counts, each exported at zero until it happens.
var (
	failedReasons  = []string{"connect", "proxy_header", "client_socket"}
	droppedReasons = []string{"nobufs", "no_flow", "error"}
	endingReasons  = []string{"eof", "closed", "max", "idle", "timeout", "pipe", "reset", "refused", "msgsize", "nobufs", "error"}
)

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

// snapshot copies the counts of a relay and of its open flows, fs.
func (s *relayStats) snapshot(fs *flowSet) snapshot {
	active, bytes := fs.live()
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := snapshot{
		name:     s.name,
		accepted: s.accepted.Load(),
		active:   active,
		failed:   clone(s.failed),
		refused:  clone(s.refused),
		tfailed:  clone(s.tfailed),
		dropped:  clone(s.dropped),
		bytes:    bytes,
		endings:  [2]map[string]int64{clone(s.endings[0]), clone(s.endings[1])},
	}
	// Every reason is there from the start, at zero: a dashboard's rate() needs the
	// series before the first event.
	for _, why := range refusedReasons {
		sn.refused[why] += 0
	}
	for _, why := range failedReasons {
		sn.failed[why] += 0
	}
	for _, why := range droppedReasons {
		sn.dropped[why] += 0
	}
	for dir := range sn.endings {
		for _, why := range endingReasons {
			sn.endings[dir][why] += 0
		}
	}
	return sn
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
