package socket

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/softnet-go/softnet/mbuf"
	"github.com/softnet-go/softnet/netq"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	netq.Default() // its epoll and eventfd descriptors live for the process
	countSplices = true
	goleak.VerifyTestMain(m, leakOpts...)
}

var leakOpts = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/softnet-go/softnet/netq.(*Worker).loop"),
}

// mbufsInUse counts the mbufs and jumbo clusters out of their zones (2 KiB clusters
// cached in packet-zone pairs count as in use in their own zone, so the pairs are counted
// instead).
func mbufsInUse() int64 {
	s := mbuf.Stats()
	return s.Mbuf.InUse + s.Packet.InUse + s.JumboPage.InUse +
		s.Jumbo9.InUse + s.Jumbo16.InUse + s.Jumbo64.InUse
}

// countFDs counts the process's open descriptors.
func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func fdList() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&b, "%s->%s ", e.Name(), l)
	}
	return b.String()
}

// clean makes t check, when it ends, that it left no goroutine, fd or mbuf behind (the
// fd and mbuf counts may take a moment: a lingering close flushes on the worker).
func clean(t testing.TB) {
	t.Helper()
	fds := countFDs()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			drainPipes()
			nfd, nm := countFDs(), mbufsInUse()
			if nfd <= fds && nm == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("leak: %d fds (was %d): %s; %d mbufs/clusters in use", nfd, fds, fdList(), nm)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := goleak.Find(leakOpts...); err != nil {
			t.Error(err)
		}
	})
}

// tctx returns a context that ends with the test or after d.
func tctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pair returns a connected pair of TCP Sockets over loopback: a dialed one and the
// accepted one.
func pair(t testing.TB, network, addr string) (*Socket, *Socket) {
	t.Helper()
	ln, err := Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := Dial(tctx(t, 10*time.Second), network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// netPair returns a connected pair of *net.TCPConn.
func netPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}
