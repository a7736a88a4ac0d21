package relay

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/softnet-go/softnet/internal/stress"
	"github.com/softnet-go/softnet/mbuf"
	"github.com/softnet-go/softnet/netq"
	"go.uber.org/goleak"
)

// mbufsInUse counts the mbufs and clusters out of their zones (2 KiB clusters cached in
// packet-zone pairs count as in use in their own zone, so the pairs are counted instead).
func mbufsInUse() int64 {
	s := mbuf.Stats()
	return s.Mbuf.InUse + s.Packet.InUse + s.JumboPage.InUse +
		s.Jumbo9.InUse + s.Jumbo16.InUse + s.Jumbo64.InUse
}

// allocFailures sums the non-blocking allocations the mbuf zones refused.
func allocFailures() int64 {
	s := mbuf.Stats()
	return s.Mbuf.Failures + s.Packet.Failures + s.Cluster.Failures + s.JumboPage.Failures +
		s.Jumbo9.Failures + s.Jumbo16.Failures + s.Jumbo64.Failures
}

// fdCounts counts the process's open descriptors: pipes (the kernel splice path keeps a
// bounded pool of idle ones) and all others.
func fdCounts() (other, pipes int, list string) {
	ents, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if strings.HasPrefix(l, "pipe:") {
			pipes++
			continue
		}
		other++
		fmt.Fprintf(&b, "%s->%s ", e.Name(), l)
	}
	return other, pipes, b.String()
}

// maxPooledPipes is socket's bound of idle pooled pipes (two fds each).
const maxPooledPipes = 64

// leakCheck makes t check, when it ends (after the servers it started have stopped),
// that no descriptor, mbuf or goroutine is left behind. Call it first in a test.
func leakCheck(t *testing.T) {
	t.Helper()
	netq.Default() // its epoll and eventfds live for the process
	fds, pipes, _ := fdCounts()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			nfd, np, list := fdCounts()
			nm := mbufsInUse()
			if nfd <= fds && np <= pipes+2*maxPooledPipes && nm == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("leak: %d fds (was %d): %s; %d pipe fds (was %d); %d mbufs/clusters in use",
					nfd, fds, list, np, pipes, nm)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/softnet-go/softnet/netq.(*Worker).loop")); err != nil {
			t.Error(err)
		}
	})
}

// setFailureRate injects allocation failures for the rest of t.
func setFailureRate(t *testing.T, p float64) {
	t.Helper()
	if err := stress.SetFailureRate(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stress.SetFailureRate(0) })
}

// setInputFragment fragments socket input for the rest of t.
func setInputFragment(t *testing.T, length int) {
	t.Helper()
	if err := stress.SetInputFragment(length); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stress.SetInputFragment(0) })
}

// flowOutcome is what one client saw of its flow through an echo target.
type flowOutcome struct {
	sent, got int
	exact     bool  // the echo came back whole, SHA-256 equal
	prefix    bool  // what came back is a prefix of what was sent (no corruption)
	err       error // the client's read or write error, if any
}

// echoFlows runs n concurrent flows of size bytes each through the relay at addr to an
// echo target, each writing its data and half-closing while it reads the echo to EOF.
func echoFlows(addr string, n, size int, seed uint64) []flowOutcome {
	out := make([]flowOutcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = echoFlow(addr, nil, size, seed+uint64(i))
		}()
	}
	wg.Wait()
	return out
}

// echoFlow is one such flow: it writes prefix (which does not come back) and size random
// bytes, half-closes, and reads the echo to EOF.
func echoFlow(addr string, prefix []byte, size int, seed uint64) flowOutcome {
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, ^seed))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	o := flowOutcome{sent: size}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		o.err = err
		return o
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(prefix)
		if err == nil {
			_, err = c.Write(data)
		}
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if e := <-werr; err == nil {
		err = e
	}
	o.got, o.err = len(got), err
	o.exact = len(got) == size && sha256.Sum256(got) == sha256.Sum256(data)
	o.prefix = bytes.Equal(got, data[:min(len(got), size)]) && len(got) <= size
	return o
}

// checkOutcomes checks the rule of §7: every flow either came back byte-exact or ended
// with a reason the relay counted (a failure to start, or an ending other than EOF), and
// no flow's bytes were corrupted. It returns how many flows were byte-exact.
func checkOutcomes(t *testing.T, srv *Server, name string, outs []flowOutcome) int {
	t.Helper()
	waitFor(t, func() bool { return srv.ActiveFlows() == 0 })
	sn := srv.snap(name)
	exact, broken := 0, 0
	for i, o := range outs {
		if !o.prefix {
			t.Errorf("flow %d: corrupted: %d bytes back of %d sent are not what was sent", i, o.got, o.sent)
		}
		if o.exact {
			exact++
			continue
		}
		broken++
		t.Logf("flow %d: %d of %d bytes back, err %v", i, o.got, o.sent, o.err)
	}
	var reasons int64
	for _, n := range sn.failed {
		reasons += n
	}
	for dir := range 2 {
		for why, n := range sn.endings[dir] {
			if why != "eof" {
				reasons += n
			}
		}
	}
	if int64(broken) > reasons {
		t.Errorf("%d flows did not complete but the relay counted only %d reasons (failed %v, endings %v): silent truncation",
			broken, reasons, sn.failed, sn.endings)
	}
	t.Logf("%d flows: %d byte-exact, %d ended early; failed %v; endings %v", len(outs), exact, broken, sn.failed, sn.endings)
	return exact
}

// TestFaultsTCP relays TCP flows while every non-blocking allocation fails at 1% and
// 10%, in user and auto mode: the relay waits for memory, so every flow still comes back
// byte-exact, and afterwards nothing is left in use.
func TestFaultsTCP(t *testing.T) {
	for _, m := range []Mode{ModeUser, ModeAuto} {
		for _, p := range []float64{0.01, 0.10} {
			t.Run(fmt.Sprintf("%s/%g", m, p), func(t *testing.T) {
				leakCheck(t)
				target := tcpServer(t, echo)
				srv, addr := startServer(t, RelayConfig{Targets: []string{target}, Mode: m})
				f0 := allocFailures()
				setFailureRate(t, p)
				const flows, size = 4, 1 << 20
				outs := echoFlows(addr, flows, size, uint64(p*1000))
				stress.SetFailureRate(0)
				injected := allocFailures() - f0
				if exact := checkOutcomes(t, srv, "test", outs); exact != flows {
					t.Errorf("%d of %d flows byte-exact; under allocation failure the relay should wait, not fail", exact, flows)
				}
				// At 1% a few hundred cluster allocations can all succeed (0.99^200 is
				// 13%), so only the 10% run must show that failures reached the data path.
				if m == ModeUser && p >= 0.10 && injected == 0 {
					t.Error("no allocation failed: the fault injection did not reach the data path")
				}
				t.Logf("%d allocation failures injected", injected)
			})
		}
	}
}

// TestFaultsFragment relays user-mode TCP flows whose every input chain is fragmented
// (MBUF_STRESS_TEST's m_fragment: 1-byte mbufs, random lengths), alone and together with
// 10% allocation failures: every flow comes back byte-exact.
func TestFaultsFragment(t *testing.T) {
	cases := []struct {
		length int
		fail   float64
		size   int
	}{
		{1, 0, 128 << 10},
		{mbuf.FragRandomEach, 0, 1 << 20},
		{mbuf.FragRandomOnce, 0.01, 1 << 20},
		{1, 0.10, 64 << 10},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("frag%d/fail%g", c.length, c.fail), func(t *testing.T) {
			leakCheck(t)
			target := tcpServer(t, echo)
			srv, addr := startServer(t, RelayConfig{Targets: []string{target}, Mode: ModeUser})
			setInputFragment(t, c.length)
			if c.fail > 0 {
				setFailureRate(t, c.fail)
			}
			const flows = 2
			outs := echoFlows(addr, flows, c.size, uint64(c.length+100))
			stress.SetFailureRate(0)
			stress.SetInputFragment(0)
			if exact := checkOutcomes(t, srv, "test", outs); exact != flows {
				t.Errorf("%d of %d fragmented flows byte-exact", exact, flows)
			}
		})
	}
}

// TestFaultsUDP relays UDP flows under 1% and 10% allocation failure. A datagram may be
// lost (UDP promises no more; the relay drops one only where a full socket would), but
// none may be corrupted or cut, and afterwards nothing is left in use.
func TestFaultsUDP(t *testing.T) {
	for _, p := range []float64{0.01, 0.10} {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			leakCheck(t)
			target := udpEcho(t)
			srv, addr := startServer(t, RelayConfig{Protocol: "udp", Targets: []string{target}, Mode: ModeUser, Idle: 300 * time.Millisecond})
			f0 := allocFailures()
			setFailureRate(t, p)
			const clients, msgs = 3, 300
			var mu sync.Mutex
			var ok, lost, bad int
			var wg sync.WaitGroup
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := net.Dial("udp", addr)
					if err != nil {
						t.Error(err)
						return
					}
					defer c.Close()
					buf := make([]byte, 4000)
					for j := range msgs {
						msg := bytes.Repeat(fmt.Appendf(nil, "%d.%d;", i, j), 1+j%300)
						want := append([]byte("echo:"), msg...)
						c.Write(msg)
						c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
						var res int // 0 lost, 1 ok, 2 bad
						for {
							n, err := c.Read(buf)
							if err != nil {
								break
							}
							if bytes.Equal(buf[:n], want) {
								res = 1
								break
							}
							if !bytes.HasPrefix(buf[:n], []byte("echo:")) || !bytes.HasSuffix(buf[:n], []byte(";")) ||
								n-5 > len(msg) {
								res = 2 // not an echo of a datagram this client sent
								break
							}
							// a late echo of an earlier datagram: read on
						}
						mu.Lock()
						switch res {
						case 0:
							lost++
						case 1:
							ok++
						case 2:
							bad++
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			stress.SetFailureRate(0)
			injected := allocFailures() - f0
			waitFor(t, func() bool { return srv.ActiveFlows() == 0 })
			sn := srv.snap("test")
			t.Logf("%d datagrams: %d echoed byte-exact, %d lost, %d corrupted; %d allocation failures injected; endings %v failed %v",
				clients*msgs, ok, lost, bad, injected, sn.endings, sn.failed)
			if bad > 0 {
				t.Errorf("%d datagrams came back corrupted", bad)
			}
			if ok < clients*msgs*9/10 {
				t.Errorf("only %d of %d datagrams came back", ok, clients*msgs)
			}
			if injected == 0 {
				t.Error("no allocation failed")
			}
		})
	}
}
