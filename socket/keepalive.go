package socket

import (
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// SetKeepAliveConfig configures TCP keepalive for the socket, as net.TCPConn's does:
// with cfg.Enable, SO_KEEPALIVE on and the idle time before the first probe
// (TCP_KEEPIDLE), the interval between probes (TCP_KEEPINTVL) and the probes that may
// go unanswered before the connection is dropped (TCP_KEEPCNT); a zero field keeps
// the kernel's value and a negative one leaves it unchanged. Times are rounded up to
// whole seconds. Without Enable it turns keepalive off. A peer that vanished is then
// found by its socket's error (ETIMEDOUT), which ends its splices.
func (so *Socket) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	if !so.ni.tcp() {
		return so.opError("set", unix.EOPNOTSUPP)
	}
	if err := setKeepAlive(so.fd, cfg); err != nil {
		return so.opError("setsockopt", err)
	}
	return nil
}

// setKeepAlive applies cfg to fd, a TCP socket: a connection's, or a listener's, whose
// settings Linux copies to every connection it accepts.
func setKeepAlive(fd int, cfg net.KeepAliveConfig) error {
	on := 0
	if cfg.Enable {
		on = 1
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, on); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	if !cfg.Enable {
		return nil
	}
	for _, o := range []struct {
		opt int
		v   int
	}{
		{unix.TCP_KEEPIDLE, seconds(cfg.Idle)},
		{unix.TCP_KEEPINTVL, seconds(cfg.Interval)},
		{unix.TCP_KEEPCNT, cfg.Count},
	} {
		if o.v <= 0 {
			continue
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, o.opt, o.v); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}

// seconds rounds d up to whole seconds; 0 and negative durations give 0 and -1.
func seconds(d time.Duration) int {
	if d < 0 {
		return -1
	}
	return int((d + time.Second - 1) / time.Second)
}

// SetKeepAliveConfig is ListenConfig.KeepAliveConfig for the connections accepted from
// now on; open ones keep theirs.
func (l *Listener) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	for _, ls := range l.socks {
		if err := setKeepAlive(ls.fd, cfg); err != nil {
			return &net.OpError{Op: "set", Net: l.ni.name, Addr: l.addr, Err: err}
		}
	}
	return nil
}
