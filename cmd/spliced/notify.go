package main

import (
	"fmt"
	"strings"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// The systemd notification protocol (sd_notify(3)) for a unit of Type=notify-reload:
// READY=1 once every relay listens, RELOADING=1 with the monotonic time when SIGHUP
// starts a reload and READY=1 when it is done, STOPPING=1 at SIGINT/SIGTERM, and
// STATUS= with what an operator sees in systemctl status — a refused reload names its
// reason there, while the old configuration keeps running. Without $NOTIFY_SOCKET
// (not started by systemd) each call does nothing.

// notify sends state lines to systemd's notification socket, if there is one.
func notify(lines ...string) {
	sdnotify.SdNotify(false, strings.Join(lines, "\n"))
}

// notifyReloading tells systemd a reload has begun, with CLOCK_MONOTONIC in µs as
// Type=notify-reload requires.
func notifyReloading() {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	notify("RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", ts.Nano()/1000))
}

// statusLine makes a STATUS= line of one line of text.
func statusLine(format string, args ...any) string {
	return "STATUS=" + strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", "; ")
}
