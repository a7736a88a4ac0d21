package socket

import (
	"errors"
	"net"
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
	so, err := (&Dialer{Worker: w}).ConnectFunc("tcp", ln.Addr().String(), func(err error) {
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
	so, err = (&Dialer{}).ConnectFunc("tcp", addr, func(err error) { res <- result{err, true} })
	if err == nil {
		so.Close()
		err = (<-res).err
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect to a closed port: %v, want ECONNREFUSED", err)
	}

	// Closed before the connect completes: a loopback listener whose accept queue is
	// full drops the SYN, so the connect stays in SYN_SENT; no callback may follow.
	hole := fullListener(t)
	called := make(chan struct{}, 1)
	so, err = (&Dialer{}).ConnectFunc("tcp", hole, func(error) { called <- struct{}{} })
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
