package relay

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/socket"
)

// errClosed is the ending of a direction whose flow the relay closed: the other
// direction failed or reached its max, or the grace period of a shutdown ran out.
var errClosed = errors.New("flow closed by the relay")

// A flow is one client's connection through a relay: two splices, one per direction,
// each with its own max and idle, both on the client socket's worker. Everything that
// changes a flow — its setup, the ends of its splices, its close — runs on that worker,
// so a flow needs no lock; the counters read from elsewhere (metrics) are atomic.
type flow struct {
	stats  *relayStats
	udp    bool
	client *socket.Socket
	target atomic.Pointer[socket.Socket] // set by the setup (TCP) before the splices start
	extra  [2]atomic.Int64               // bytes sent by the relay itself (UDP datagrams that reached the listener)

	closing atomic.Bool
	abort   bool         // a direction failed or went idle: close with a reset (SO_LINGER 0)
	forget  func()       // if set, runs first when the flow closes
	pending atomic.Int32 // directions still running (the setup counts as one)
	done    func()       // runs when both directions have ended

	setup *setup // the TCP connect in progress; nil once the splices run

	begun time.Time // accepted (TCP) or first datagram (UDP), for the access log
	cause string    // how the flow ended: its first ending that was not EOF or the relay's close

	prev, next *flow // on its relay's flowSet, under its mu
}

// moved returns the bytes one direction has moved so far.
func (f *flow) moved(dir int) int64 {
	n := f.extra[dir].Load()
	src := f.client
	if dir == toClient {
		src = f.target.Load()
	}
	if src != nil {
		n += src.SpliceLen()
	}
	return n
}

// start splices both ways, in mode, each direction with max and idle, bulk flows
// borrowing kernel buffers from budget; done runs once
// both have ended and the flow is closed. The caller has set pending to the number of
// tokens it holds (1 for a flow whose setup counted as one running direction).
//
// Each direction ends by EOF (passed on by shutting down the drain's write side: honest
// half-close), by idle (that direction stops; the other goes on), or by max or an error
// (the flow closes at once, so a reset, a dead target or a peer keepalive found gone reaches the other side
// promptly). No goroutine waits for a flow: the ends arrive as OnEnd callbacks on the
// sockets' worker.
func (f *flow) start(mode socket.SpliceMode, max int64, idle time.Duration, budget *socket.BufferBudget) {
	f.pending.Add(1) // two directions, where the caller held one token
	target := f.target.Load()
	ends := [2]struct{ src, dst *socket.Socket }{{f.client, target}, {target, f.client}}
	for dir, e := range ends {
		opt := socket.SpliceOptions{Max: max, Idle: idle, Mode: mode, Budget: budget, OnEnd: func(err error) { f.ended(dir, err) }}
		if err := e.src.Splice(e.dst, opt); err != nil {
			f.ended(dir, err)
		}
	}
}

// ended handles the end of one direction, on the flow's worker.
func (f *flow) ended(dir int, err error) {
	if f.closing.Load() {
		err = errClosed
	}
	why := f.stats.ending(dir, err)
	if f.cause == "" && why != "eof" && why != "closed" {
		f.cause = why
	}
	if err != nil && err != errClosed && !errors.Is(err, syscall.EFBIG) {
		// A peer that reset, vanished or stalled will not take what is still queued
		// for it: reset rather than let closed sockets hold their data and fds. Max
		// (EFBIG) is a normal end: its bytes are delivered.
		f.abort = true
	}
	switch {
	case err == nil && !f.udp:
		dst := f.client
		if dir == toTarget {
			dst = f.target.Load()
		}
		dst.CloseWrite()
	case err == socket.ErrIdle:
		// This direction was quiet for idle: it stops, the other goes on. A socket's own
		// ETIMEDOUT (keepalive or retransmissions gave up: the peer vanished) closes
		// the flow, below.
	default:
		f.close()
	}
	f.release()
}

// release gives back one of the flow's tokens (a direction, or its setup); the last one
// closes the flow and runs done.
func (f *flow) release() {
	if f.pending.Add(-1) == 0 {
		f.close()
		f.done()
	}
}

// close closes both ends, which ends any direction still running, and a connect in
// progress. It runs on the flow's worker. It may be called again from inside itself
// (closing a socket calls its splice's end callback, which closes the flow) and then
// does nothing.
func (f *flow) close() {
	if !f.closing.CompareAndSwap(false, true) {
		return
	}
	if f.forget != nil {
		f.forget()
	}
	target := f.target.Load()
	if f.abort {
		f.client.SetLinger(0)
		if target != nil {
			target.SetLinger(0)
		}
	}
	f.client.Close()
	if target != nil {
		target.Close()
	}
	if s := f.setup; s != nil {
		// Closed while connecting (a shutdown's grace ran out): the connect's
		// callback will not run, so the setup gives its token back here.
		f.setup = nil
		s.timer.Stop()
		f.release()
	}
}

// resetOnWorker closes f with a reset from any goroutine: on its worker, after what is
// queued there. A flow cut short must not end with a FIN, which its peers would take
// for the end of a complete stream.
func (f *flow) resetOnWorker() {
	f.client.Worker().Barrier(func() {
		f.abort = true
		f.close()
	})
}

// logAccess writes the flow's access-log line, as it ends: the relay (in s's logger), the
// client and the target as address strings, the bytes each way, how long it lived and
// how it ended — the first ending that was not EOF (idle, max, reset, pipe, timeout…),
// eof if both directions ended so, or why no target took it (refused, timeout…).
func (f *flow) logAccess(s *settings, target string) {
	end := f.cause
	if end == "" {
		end = "eof"
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "flow",
		slog.String("client", f.client.RemoteAddr().String()),
		slog.String("target", target),
		slog.Int64("bytes_to_target", f.moved(toTarget)),
		slog.Int64("bytes_to_client", f.moved(toClient)),
		slog.String("duration", time.Since(f.begun).Round(time.Microsecond).String()),
		slog.String("end", end))
}
