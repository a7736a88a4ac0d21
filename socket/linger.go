package socket

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// closeDrain bounds how long a closed socket may keep its fd and send sockbuf while the
// peer takes the data, when SetLinger was not called. A kernel socket closed with data
// queued goes on sending as an orphan and is reset when its retransmissions or
// zero-window probes give up (tcp_orphan_retries); a user-space socket has no such end
// of its own, so a peer that never reads would hold the fd and the mbufs for ever.
const closeDrain = time.Minute

// lingerDefault marks a socket whose Close drains for at most closeDrain.
const lingerDefault = -1

// SetLinger is SO_LINGER, with net.TCPConn's meaning: how Close treats data still queued
// to send. sec < 0 (the default) lets Close return at once while the worker goes on
// writing the send sockbuf for at most a minute, after which the rest is discarded and
// the connection reset. sec == 0 discards unsent data at Close and resets the connection
// (an abortive close: no FIN, no TIME_WAIT). sec > 0 is the default with sec seconds in
// place of the minute. The kernel socket gets the same setting.
func (so *Socket) SetLinger(sec int) error {
	if so.state.Load()&ssClosed != 0 {
		return so.opError("set", net.ErrClosed)
	}
	if sec < 0 {
		sec = lingerDefault
	}
	x := so.extra()
	x.mu.Lock()
	x.linger, x.lingerSet = sec, true
	x.mu.Unlock()
	if !so.ni.tcp() {
		return nil
	}
	l := unix.Linger{}
	if sec >= 0 {
		l = unix.Linger{Onoff: 1, Linger: int32(sec)}
	}
	if err := unix.SetsockoptLinger(so.fd, unix.SOL_SOCKET, unix.SO_LINGER, &l); err != nil {
		return so.opError("setsockopt", err)
	}
	return nil
}

// lingerTime returns how long a closing socket may drain its send sockbuf; 0 is an
// abortive close.
func (so *Socket) lingerTime() time.Duration {
	if x := so.x.Load(); x != nil {
		x.mu.Lock()
		defer x.mu.Unlock()
		if x.lingerSet && x.linger >= 0 {
			return time.Duration(x.linger) * time.Second
		}
	}
	return closeDrain
}

// lingerStart arms the timer that ends a drain after d. Called on the worker by doomed.
func (so *Socket) lingerStart(d time.Duration) {
	x := so.extra()
	x.mu.Lock()
	if x.lingerArmed {
		x.mu.Unlock()
		return
	}
	so.w.InitTimer(&x.lingerTimer, so.lingerExpired)
	x.lingerArmed = true
	x.mu.Unlock()
	x.lingerTimer.Reset(d)
}

// lingerStop disarms the drain timer. Called by destroy.
func (so *Socket) lingerStop() {
	if x := so.x.Load(); x != nil {
		x.mu.Lock()
		armed := x.lingerArmed
		x.mu.Unlock()
		if armed {
			x.lingerTimer.Stop()
		}
	}
}

// lingerExpired runs on the worker when a closed socket's peer did not take its data in
// time: the data is dropped and the connection reset, as the kernel does to an orphan
// that gives up.
func (so *Socket) lingerExpired() {
	if so.state.Load()&ssDestroyed != 0 {
		return
	}
	so.abort()
}

// abort resets the connection and destroys the socket, discarding unsent data.
func (so *Socket) abort() {
	if so.ni.tcp() {
		unix.SetsockoptLinger(so.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	so.soerr.CompareAndSwap(0, int32(syscall.ECONNABORTED))
	so.destroy()
}
