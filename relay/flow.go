package relay

import (
	"errors"
	"net"
	"sync"
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

	closing   atomic.Bool
	closeOnce sync.Once
	forget    func() // if set, runs first when the flow closes
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

// run moves both directions until both have ended, then closes the flow. Each direction
// ends by EOF (passed on by shutting down the drain's write side: honest half-close),
// by idle (that direction stops; the other goes on), or by max or an error (the flow
// closes at once, so a reset or a dead target reaches the other side promptly).
func (f *flow) run(max int64, idle time.Duration) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.runDir(toClient, max, idle)
	}()
	f.runDir(toTarget, max, idle)
	wg.Wait()
	f.close()
}

func (f *flow) runDir(dir int, max int64, idle time.Duration) {
	d := &f.dirs[dir]
	err := f.eng.move(d, max, idle)
	if f.closing.Load() {
		err = errClosed
	}
	f.stats.ending(dir, err)
	switch {
	case err == nil && !f.udp:
		if cw, ok := d.dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	case errors.Is(err, syscall.ETIMEDOUT):
	default:
		f.close()
	}
}

// close closes both ends, which ends any direction still running.
func (f *flow) close() {
	f.closeOnce.Do(func() {
		f.closing.Store(true)
		if f.forget != nil {
			f.forget()
		}
		f.client.Close()
		f.target.Close()
	})
}
