package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// procFDs counts the open descriptors of process pid.
func procFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// procCPU returns the user+system CPU time process pid has used, in clock ticks.
func procCPU(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name (which is in parentheses): utime is the 14th
	// field of the line, stime the 15th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// countLogs counts the daemon's log records with message msg.
func (d *daemon) countLogs(msg string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, r := range d.logs {
		if r["msg"] == msg {
			n++
		}
	}
	return n
}

// echoThrough sends size random bytes through the relay at addr to an echo target and
// reports whether they came back byte-exact.
func echoThrough(addr string, size int) (bool, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	data := make([]byte, size)
	rand.Read(data)
	go func() { c.Write(data); c.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(c)
	return bytes.Equal(got, data), err
}

const (
	msgShortage = "accept failing: backing off (logged once until it recovers)"
	msgRecover  = "accepting again"
)

// TestEMFILE floods a daemon whose descriptor limit is lowered (RLIMIT_NOFILE through
// prlimit) with connections until it runs out of descriptors: the accept loop backs off
// without spinning, logs the shortage once (not once a failure), and when the clients
// go and descriptors return it accepts again, logs that once, and relays byte-exact.
func TestEMFILE(t *testing.T) {
	for _, mode := range []string{"user", "kernel"} {
		t.Run(mode, func(t *testing.T) { testEMFILE(t, mode) })
	}
}

func testEMFILE(t *testing.T, mode string) {
	target := tcpTarget(t, echo)
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", mode, "--workers", "2")
	addr := d.addr()
	if ok, err := echoThrough(addr, 64<<10); !ok {
		t.Fatalf("relay before the flood: %v", err)
	}
	pid := d.cmd.Process.Pid
	// Room for a few flows (two descriptors each, and pipes in kernel mode) above what
	// the daemon holds now.
	limit := uint64(procFDs(t, pid) + 12)
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: 20000}, &old); err != nil {
		t.Skipf("prlimit: %v", err)
	}
	t.Logf("daemon fd limit %d (was %d)", limit, old.Cur)

	// The flood: far more clients than descriptors. The kernel completes their
	// handshakes into the listen queue; the relay can accept only a few.
	const flood = 80
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range flood {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break // the listen queue is full
		}
		conns = append(conns, c)
	}
	t.Logf("%d clients connected", len(conns))
	for end := time.Now().Add(5 * time.Second); d.countLogs(msgShortage) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no %q after %d connections with a limit of %d descriptors:\n%s", msgShortage, len(conns), limit, d.logText())
		}
	}

	t.Logf("shortage: %v", d.waitLog(msgShortage))

	// Under the shortage, for a while: no busy loop, no more warnings.
	cpu0 := procCPU(t, pid)
	const hold = 1500 * time.Millisecond
	time.Sleep(hold)
	ticks := procCPU(t, pid) - cpu0 // 100 a second
	t.Logf("%d CPU ticks in %v under the shortage; %d fds open", ticks, hold, procFDs(t, pid))
	if ticks > 75 {
		t.Errorf("the daemon used %d ticks of CPU in %v out of descriptors: it spins", ticks, hold)
	}
	if n := d.countLogs(msgShortage); n != 1 {
		t.Errorf("%d %q records, want 1 for the whole spell", n, msgShortage)
	}
	if n := d.countLogs("accept failed"); n != 0 {
		t.Errorf("%d per-failure \"accept failed\" records", n)
	}

	// The clients go: their flows end, the queued ones are accepted and end, and the
	// descriptors come back.
	for _, c := range conns {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	conns = nil
	// The spell ends with the first flow set up with no failure since its accept; a flow
	// accepted while a queued flood connection still failed to connect does not end it,
	// so keep relaying, as real clients would, until the daemon says it recovered.
	for end := time.Now().Add(10 * time.Second); d.countLogs(msgRecover) == 0; time.Sleep(50 * time.Millisecond) {
		ok, err := echoThrough(addr, 256<<10)
		if time.Now().After(end) {
			t.Fatalf("relay not back 10s after the flood ended (last echo ok=%v: %v)\n%s", ok, err, d.logText())
		}
	}
	r := d.waitLog(msgRecover)
	t.Logf("recovered after %v, %v failures", r["after"], r["failures"])
	if n := d.countLogs(msgRecover); n != 1 {
		t.Errorf("%d %q records, want 1", n, msgRecover)
	}
	// And it keeps relaying, with room to spare.
	for range 3 {
		if ok, err := echoThrough(addr, 64<<10); !ok {
			t.Fatalf("relay after recovery: %v", err)
		}
	}
	if n := d.countLogs(msgShortage); n != 1 {
		t.Errorf("%d %q records in all, want 1", n, msgShortage)
	}
}
