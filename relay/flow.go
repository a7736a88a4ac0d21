package relay

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// errClosed is the ending of a direction whose flow the relay closed: the other
// direction failed or reached its max, or the grace period of a shutdown ran out.
var errClosed = errors.New("flow closed by the relay")

// A flow is one client's connection through a relay: two directions, each spliced (or
// copied) on its own, with its own max and idle.
type flow struct {
	stats  *relayStats
	eng    engine
	udp    bool
	client net.Conn
	target net.Conn
	dirs   [2]direction
	extra  [2]atomic.Int64 // bytes sent by the relay itself (UDP datagrams that reached the listener)

	closing atomic.Bool
	abort   atomic.Bool  // a direction failed or went idle: close with a reset (SO_LINGER 0)
	forget  func()       // if set, runs first when the flow closes
	pending atomic.Int32 // directions still running
	done    func()       // runs when both directions have ended

	prev, next *flow // on relayStats.active, under its mu
}

func newFlow(st *relayStats, eng engine, client, target net.Conn, udp bool) *flow {
	f := &flow{stats: st, eng: eng, udp: udp, client: client, target: target}
	f.dirs[toTarget].src, f.dirs[toTarget].dst = client, target
	f.dirs[toClient].src, f.dirs[toClient].dst = target, client
	return f
}

// moved returns the bytes one direction has moved so far.
func (f *flow) moved(dir int) int64 {
	return f.eng.moved(&f.dirs[dir]) + f.extra[dir].Load()
}

// start starts both directions; done runs once both have ended and the flow is closed.
// Each direction ends by EOF (passed on by shutting down the drain's write side: honest
// half-close), by idle (that direction stops; the other goes on), or by max or an error
// (the flow closes at once, so a reset or a dead target reaches the other side
// promptly). With the splicing engines no goroutine waits for a flow: the ends arrive
// as callbacks on the sockets' worker.
func (f *flow) start(max int64, idle time.Duration, done func()) {
	f.done = done
	f.pending.Store(2)
	for dir := range 2 {
		if err := f.eng.start(&f.dirs[dir], max, idle, func(err error) { f.ended(dir, err) }); err != nil {
			f.ended(dir, err)
		}
	}
}

// ended handles the end of one direction. It must not block: it may run on a worker.
func (f *flow) ended(dir int, err error) {
	if f.closing.Load() {
		err = errClosed
	}
	f.stats.ending(dir, err)
	if err != nil && err != errClosed && !errors.Is(err, syscall.EFBIG) {
		// A peer that reset, vanished or stalled will not take what is still queued
		// for it: reset rather than let closed sockets hold their data and fds. Max
		// (EFBIG) is a normal end: its bytes are delivered.
		f.abort.Store(true)
	}
	switch {
	case err == nil && !f.udp:
		if cw, ok := f.dirs[dir].dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	case errors.Is(err, syscall.ETIMEDOUT):
	default:
		f.close()
	}
	if f.pending.Add(-1) == 0 {
		f.close()
		f.done()
	}
}

// close closes both ends, which ends any direction still running. It may be called
// again from inside itself (closing a socket calls its splice's end callback, which
// closes the flow) and then does nothing.
func (f *flow) close() {
	if !f.closing.CompareAndSwap(false, true) {
		return
	}
	if f.forget != nil {
		f.forget()
	}
	if f.abort.Load() {
		for _, c := range []net.Conn{f.client, f.target} {
			if l, ok := c.(interface{ SetLinger(int) error }); ok {
				l.SetLinger(0)
			}
		}
	}
	f.client.Close()
	f.target.Close()
}
