package socket

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/softnet-go/softnet/netq"
	"golang.org/x/sys/unix"
)

// TestListenEMFILE runs a Listener out of descriptors with connections waiting in the
// kernel's accept queue: Accept reports EMFILE (again on each call while it lasts, never
// blocking on a listener that edge-triggered epoll will not report again), and once
// descriptors return, Accept re-arms the accept and every waiting connection is
// accepted.
func TestListenEMFILE(t *testing.T) {
	clean(t)
	ln, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const n = 8
	// The clients' sockets are made first: connecting them takes no descriptor.
	var clients []int
	defer func() {
		for _, fd := range clients {
			unix.Close(fd)
		}
	}()
	for range n {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, fd)
	}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	restore := func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) }
	defer restore()
	// No descriptor to spare: the limit is the lowest free descriptor, so accept4 fails
	// with EMFILE.
	free, err := unix.Dup(0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(free)
	lim := unix.Rlimit{Cur: uint64(free), Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	sa := &unix.SockaddrInet4{Port: ln.Addr().(*net.TCPAddr).Port, Addr: [4]byte{127, 0, 0, 1}}
	for _, fd := range clients {
		if err := unix.Connect(fd, sa); err != nil {
			restore()
			t.Fatalf("connect: %v", err)
		}
	}
	for i := range 3 {
		done := make(chan error, 1)
		go func() {
			s, err := ln.Accept()
			if err == nil {
				s.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, syscall.EMFILE) {
				restore()
				t.Fatalf("Accept %d out of descriptors: %v, want EMFILE", i, err)
			}
		case <-time.After(5 * time.Second):
			restore()
			t.Fatalf("Accept %d out of descriptors blocked: the error was not reported", i)
		}
	}
	restore()
	// Descriptors are back: the waiting connections are all accepted. (An accept a
	// report re-armed may have failed before the limit went up: that error is still
	// reported, once per listening socket — one per worker — at most.)
	stale := 0
	for i := 0; i < n; {
		done := make(chan error, 1)
		go func() {
			s, err := ln.Accept()
			if err == nil {
				s.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if errors.Is(err, syscall.EMFILE) && stale < len(ln.socks) {
				stale++
				continue
			}
			if err != nil {
				t.Fatalf("Accept %d after descriptors returned: %v", i, err)
			}
			i++
		case <-time.After(5 * time.Second):
			t.Fatalf("Accept %d after descriptors returned blocked: the listener did not re-arm", i)
		}
	}
}

// TestListenOwnsItsAddress checks that Listen refuses an address another socket listens
// on, unless both ask to share it (ReusePort), and that a listener's own per-worker
// sockets share theirs either way.
func TestListenOwnsItsAddress(t *testing.T) {
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := other.Addr().String()
	g, err := netq.NewGroup(2)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	lc := ListenConfig{Group: g}
	if ln, err := lc.Listen("tcp", addr); !errors.Is(err, syscall.EADDRINUSE) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("Listen on an address net.Listen holds = %v, want EADDRINUSE", err)
	}
	other.Close()

	first, err := lc.Listen("tcp", addr) // two sockets, one per worker
	if err != nil {
		t.Fatalf("Listen once the address is free: %v", err)
	}
	if ln, err := lc.Listen("tcp", addr); !errors.Is(err, syscall.EADDRINUSE) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("second Listen on the address = %v, want EADDRINUSE", err)
	}
	first.Close()

	share := ListenConfig{Group: lc.Group, ReusePort: true}
	a, err := share.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := share.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("second Listen with ReusePort: %v", err)
	}
	b.Close()
}
