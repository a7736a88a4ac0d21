package socket

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/softnet-go/softnet/netq"
	"golang.org/x/sys/unix"
)

// TestOnAcceptOnWorker: with OnAccept, each connection is handed over on the worker
// that accepted it, with its peer's address known without a system call, and Accept
// refuses to compete.
func TestOnAcceptOnWorker(t *testing.T) {
	got := make(chan *Socket, 4)
	onWorker := make(chan bool, 4)
	lc := ListenConfig{OnAccept: func(so *Socket) {
		onWorker <- so.Worker().OnWorker()
		got <- so
	}}
	ln, err := lc.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, errOnAccept) {
		t.Errorf("Accept on an OnAccept listener: %v", err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	so := <-got
	defer so.Close()
	if !<-onWorker {
		t.Error("OnAccept ran off the socket's worker")
	}
	if so.RemoteAddr().String() != c.LocalAddr().String() {
		t.Errorf("RemoteAddr %v, want the client's %v", so.RemoteAddr(), c.LocalAddr())
	}
}

// TestConnectFunc: the callback runs on the worker with nil once connected, and with
// ECONNREFUSED when the connect fails (or ConnectFunc returns that error at once); a
// socket closed while connecting never hears back.
func TestConnectFunc(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		err      error
		onWorker bool
	}
	res := make(chan result, 1)
	w := netq.Default().Worker(0)
	so, err := (&Dialer{Worker: w}).ConnectFunc("tcp", netip.MustParseAddrPort(ln.Addr().String()), func(err error) {
		res <- result{err, w.OnWorker()}
	})
	if err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || !r.onWorker {
		t.Errorf("connect to a listener: %v, on worker %v", r.err, r.onWorker)
	}
	so.Close()

	addr := ln.Addr().String()
	ln.Close()
	so, err = (&Dialer{}).ConnectFunc("tcp", netip.MustParseAddrPort(addr), func(err error) { res <- result{err, true} })
	if err == nil {
		select {
		case r := <-res: // refused by the SYN's answer, after connect(2) returned
			err = r.err
		case <-time.After(5 * time.Second):
			t.Fatal("no callback for a refused connect")
		}
		so.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect to a closed port: %v, want ECONNREFUSED", err)
	}

	// Closed before the connect completes: a loopback listener whose accept queue is
	// full drops the SYN, so the connect stays in SYN_SENT; no callback may follow.
	hole := fullListener(t)
	called := make(chan struct{}, 1)
	so, err = (&Dialer{}).ConnectFunc("tcp", netip.MustParseAddrPort(hole), func(error) { called <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	so.Close()
	select {
	case <-called:
		t.Error("the callback ran for a socket closed while connecting")
	case <-time.After(300 * time.Millisecond):
	}
}

// fullListener returns the address of a loopback listener whose accept queue is full,
// so the kernel drops further SYNs.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr // the queue is full: this SYN was dropped
		}
		t.Cleanup(func() { c.Close() })
		if i > 16 {
			t.Skip("the kernel keeps accepting into a full queue")
		}
	}
}

// TestStalledDrainIdles: a splice whose drain's peer stops reading waits without using
// the CPU, in every mode — in auto mode too, where bytes the user path queued on the
// drain's send sockbuf are still there when the flow moves to the kernel path (output
// that found the kernel full must not wake the splice, which would kick output again).
func TestStalledDrainIdles(t *testing.T) {
	forModes(t, func(t *testing.T, mode SpliceMode) {
		r := newRig(t, nil)
		r.dst.SetWriteBuffer(128 << 10)
		r.server.SetReadBuffer(64 << 10)
		if err := r.src.Splice(r.dst, SpliceOptions{Mode: mode}); err != nil {
			t.Fatal(err)
		}
		go func() { r.client.Write(randBytes(3, 16<<20)) }() // ends when the rig closes
		// Wait for the flow to stall: the drain's sockbuf and kernel buffers full.
		var last int64 = -1
		for i := 0; i < 100; i++ {
			time.Sleep(20 * time.Millisecond)
			n := r.src.SpliceLen()
			if n == last && n > 0 {
				break
			}
			last = n
		}
		var ru0, ru1 unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru0)
		start := time.Now()
		time.Sleep(500 * time.Millisecond)
		unix.Getrusage(unix.RUSAGE_SELF, &ru1)
		cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
		if frac := float64(cpu) / float64(time.Since(start)); frac > 0.25 {
			t.Errorf("stalled splice: the process used %v of CPU in %v (%.0f%% of a core): a busy loop", cpu, time.Since(start), 100*frac)
		}
	})
}

// TestListenBuffers: accepted sockets have the listener's buffer sizes and TCP_NODELAY
// from the kernel, and sockbuf marks to match; SetBuffers changes them for later ones.
func TestListenBuffers(t *testing.T) {
	got := make(chan *Socket, 2)
	lc := ListenConfig{ReadBuffer: 48 << 10, WriteBuffer: 40 << 10, OnAccept: func(so *Socket) { got <- so }}
	ln, err := lc.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	check := func(rcv, snd int) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		so := <-got
		defer so.Close()
		for _, o := range []struct {
			name       string
			level, opt int
			want       int
		}{
			{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, 2 * rcv},
			{"SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF, 2 * snd},
			{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		} {
			if v, _ := unix.GetsockoptInt(so.fd, o.level, o.opt); v != o.want {
				t.Errorf("accepted socket: %s = %d, want %d", o.name, v, o.want)
			}
		}
		so.rcv.mu.Lock()
		rh, rs := so.rcv.hiwat, so.rcv.flags&sbSized != 0
		so.rcv.mu.Unlock()
		so.snd.mu.Lock()
		sh, ss := so.snd.hiwat, so.snd.flags&sbSized != 0
		so.snd.mu.Unlock()
		if rh != rcv || sh != snd || !rs || !ss {
			t.Errorf("sockbufs: rcv %d (sized %v), snd %d (sized %v), want %d and %d, sized", rh, rs, sh, ss, rcv, snd)
		}
	}
	check(48<<10, 40<<10)
	if err := ln.SetBuffers(96<<10, 80<<10); err != nil {
		t.Fatal(err)
	}
	check(96<<10, 80<<10)
}

// TestKeepAlive: SetKeepAliveConfig sets SO_KEEPALIVE and its three times, and a
// listener's KeepAliveConfig reaches the connections it accepts.
func TestKeepAlive(t *testing.T) {
	cfg := net.KeepAliveConfig{Enable: true, Idle: 42 * time.Second, Interval: 1500 * time.Millisecond, Count: 3}
	got := make(chan *Socket, 1)
	lc := ListenConfig{KeepAliveConfig: cfg, OnAccept: func(so *Socket) { got <- so }}
	ln, err := lc.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	accepted := <-got
	defer accepted.Close()
	dialled, err := (&Dialer{}).DialContext(tctx(t, 5*time.Second), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialled.Close()
	<-got // its accepted end
	if err := dialled.SetKeepAliveConfig(cfg); err != nil {
		t.Fatal(err)
	}
	for _, so := range []*Socket{accepted, dialled} {
		for _, o := range []struct {
			name       string
			level, opt int
			want       int
		}{
			{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 42},
			{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 2}, // rounded up
			{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 3},
		} {
			if v, _ := unix.GetsockoptInt(so.fd, o.level, o.opt); v != o.want {
				t.Errorf("%s = %d, want %d", o.name, v, o.want)
			}
		}
	}
	if err := dialled.SetKeepAliveConfig(net.KeepAliveConfig{}); err != nil {
		t.Fatal(err)
	}
	if v, _ := unix.GetsockoptInt(dialled.fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE); v != 0 {
		t.Errorf("SO_KEEPALIVE = %d after turning it off", v)
	}
}
