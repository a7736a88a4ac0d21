package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	bin "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Multi-host tests: client, relay and server in network namespaces of
// their own, joined by veth pairs, with the daemon running in the relay's namespace and
// real faults on the links: rate and queue limits (tbf, htb + pfifo; this kernel has no
// netem), a link going down and up, a server whose namespace vanishes under a live flow,
// and random drop through netfilter. Data is checked byte-exact by SHA-256.
//
// Address plan, one lab per test: client 10.200.1.1 — 10.200.1.2 relay (listens on
// :7000 for TCP, :7001 for UDP); relay 10.200.2.1 — 10.200.2.2 server (:8000 TCP, :8001
// UDP); relay 10.200.3.1 — 10.200.3.2 second server.

const (
	nsRelayTCP   = "10.200.1.2:7000"
	nsRelayUDP   = "10.200.1.2:7001"
	nsServerTCP  = "10.200.2.2:8000"
	nsServerUDP  = "10.200.2.2:8001"
	nsServer2TCP = "10.200.3.2:8000"
)

// nsTopo is client — relay — server.
type nsTopo struct {
	l           *nsLab
	c, r, s     string // namespaces
	cDev, rcDev string // client–relay link: client end, relay end
	rsDev, sDev string // relay–server link: relay end, server end
}

func newNsTopo(t *testing.T) *nsTopo {
	t.Helper()
	l := newNsLab(t)
	tp := &nsTopo{l: l, c: l.netns("c"), r: l.netns("r"), s: l.netns("s")}
	tp.cDev, tp.rcDev = l.link(tp.c, "10.200.1.1/24", tp.r, "10.200.1.2/24")
	tp.rsDev, tp.sDev = l.link(tp.r, "10.200.2.1/24", tp.s, "10.200.2.2/24")
	return tp
}

func nsRandom(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func nsMbits(n int, d time.Duration) float64 { return float64(n) * 8 / d.Seconds() / 1e6 }

// TestNetnsShapedLinks relays a few MiB through a rate-limited link (tbf) and through a
// queue-limited one (htb with a 5-packet pfifo one way, tbf with a 6 KB queue the
// other), both ways at once (an echo), checking the data byte-exact, and that the
// throughput seen does not beat the configured rate.
func TestNetnsShapedLinks(t *testing.T) {
	nsCheckLeaks(t)
	for _, mode := range []string{"user", "kernel"} {
		t.Run("rate/"+mode, func(t *testing.T) {
			tp := newNsTopo(t)
			const rate = 40 // Mbit/s
			for _, p := range [][2]string{{tp.c, tp.cDev}, {tp.r, tp.rcDev}} {
				tp.l.tc(p[0], "qdisc", "add", "dev", p[1], "root", "tbf", "rate", fmt.Sprintf("%dmbit", rate), "burst", "32kb", "latency", "50ms")
			}
			nsShapedTransfer(t, tp, mode, rate, 4<<20, [][2]string{{tp.c, tp.cDev}, {tp.r, tp.rcDev}})
		})
		t.Run("queue/"+mode, func(t *testing.T) {
			tp := newNsTopo(t)
			const rate = 30
			tp.l.smallGSO(tp.r, tp.rsDev)
			tp.l.smallGSO(tp.s, tp.sDev)
			tp.l.tc(tp.r, "qdisc", "add", "dev", tp.rsDev, "root", "handle", "1:", "htb", "default", "10")
			tp.l.tc(tp.r, "class", "add", "dev", tp.rsDev, "parent", "1:", "classid", "1:10", "htb", "rate", fmt.Sprintf("%dmbit", rate), "ceil", fmt.Sprintf("%dmbit", rate), "quantum", "1514")
			tp.l.tc(tp.r, "qdisc", "add", "dev", tp.rsDev, "parent", "1:10", "handle", "20:", "pfifo", "limit", "5")
			tp.l.tc(tp.s, "qdisc", "add", "dev", tp.sDev, "root", "tbf", "rate", fmt.Sprintf("%dmbit", rate), "burst", "6kb", "limit", "6kb")
			nsShapedTransfer(t, tp, mode, rate, 3<<20, [][2]string{{tp.r, tp.rsDev}, {tp.s, tp.sDev}})
		})
	}
}

func nsShapedTransfer(t *testing.T, tp *nsTopo, mode string, rate float64, size int, shaped [][2]string) {
	srv := startNsEchoServer(t, tp.s, nsServerTCP)
	d := startNsDaemon(t, tp.r, "--listen", nsRelayTCP, "--to", nsServerTCP, "--mode", mode, "--idle", "20s")
	data := nsRandom(size)
	c := nsDialTCP(t, tp.c, nsRelayTCP)
	el := nsEchoCheck(t, c, data)
	nsCheckServerGot(t, srv.result(t, 10*time.Second), data)
	got := nsMbits(size, el)
	var drops []string
	for _, p := range shaped {
		drops = append(drops, fmt.Sprintf("%s %d", p[1], tp.l.qdiscDrops(p[0], p[1])))
	}
	t.Logf("%d MiB each way, mode %s: %.1f s, %.1f Mbit/s each way on a %.0f Mbit/s link (%.0f%%); qdisc drops: %s",
		size>>20, mode, el.Seconds(), got, rate, 100*got/rate, strings.Join(drops, ", "))
	if got > 1.1*rate {
		t.Errorf("%.1f Mbit/s through a %.0f Mbit/s link: the shaper did not take effect", got, rate)
	}
	if got < 0.05*rate {
		t.Errorf("%.1f Mbit/s through a %.0f Mbit/s link: under 5%% of it", got, rate)
	}
	mf := d.waitIdle(5 * time.Second)
	for _, dir := range []string{"to_target", "to_client"} {
		if n := metric(mf, "spliced_bytes_total", "direction="+dir); n != float64(size) {
			t.Errorf("spliced_bytes_total{%s} = %v, want %d", dir, n, size)
		}
	}
}

// TestNetnsLinkDown takes the relay's link to the server down for 1.5 s in the middle
// of a transfer (well below TCP's give-up time) and up again: the flow resumes and the
// data arrives byte-exact.
func TestNetnsLinkDown(t *testing.T) {
	nsCheckLeaks(t)
	for _, mode := range []string{"user", "kernel"} {
		t.Run(mode, func(t *testing.T) { testNetnsLinkDown(t, mode) })
	}
}

func testNetnsLinkDown(t *testing.T, mode string) {
	tp := newNsTopo(t)
	const rate = 20
	for _, p := range [][2]string{{tp.r, tp.rsDev}, {tp.s, tp.sDev}} {
		tp.l.tc(p[0], "qdisc", "add", "dev", p[1], "root", "tbf", "rate", fmt.Sprintf("%dmbit", rate), "burst", "32kb", "latency", "50ms")
	}
	srv := startNsEchoServer(t, tp.s, nsServerTCP)
	d := startNsDaemon(t, tp.r, "--listen", nsRelayTCP, "--to", nsServerTCP, "--mode", mode, "--idle", "20s")
	const size = 4 << 20
	data := nsRandom(size)
	c := nsDialTCP(t, tp.c, nsRelayTCP)
	done := make(chan error, 1)
	go func() {
		_, err := nsEchoTransfer(c, data)
		done <- err
	}()
	nsWaitFor(t, 20*time.Second, "1 MiB at the server", func() bool { return srv.received.Load() >= 1<<20 })
	const down = 1500 * time.Millisecond
	tp.l.ip(tp.r, "link", "set", tp.rsDev, "down")
	atDown := srv.received.Load()
	time.Sleep(down)
	atUp := srv.received.Load()
	tp.l.ip(tp.r, "link", "set", tp.rsDev, "up")
	if atUp >= size {
		t.Fatalf("all %d bytes arrived while the link was down", size)
	}
	up := time.Now()
	nsWaitFor(t, 15*time.Second, "data moving again after the link came up", func() bool { return srv.received.Load() > atUp })
	resume := time.Since(up)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	nsCheckServerGot(t, srv.result(t, 10*time.Second), data)
	t.Logf("link down %v at %d KiB at the server; it read %d KiB (from its socket buffer) while down; data moving again %v after the link came up",
		down, atDown>>10, (atUp-atDown)>>10, resume.Round(time.Millisecond))
	mf := d.waitIdle(5 * time.Second)
	if n := metric(mf, "spliced_splice_endings_total", "direction=to_target", "reason=eof"); n != 1 {
		t.Errorf("to_target endings by eof: %v, want 1 (endings %v)", n, nsEndings(mf))
	}
}

// TestNetnsPeerVanishes deletes a server's veth and namespace under a live flow: the
// relay ends that flow within its --idle, keeps serving the flow to a second server
// meanwhile, fails new flows over to it, serves the first server again once its
// namespace is back, and stays up, with no active flow left.
func TestNetnsPeerVanishes(t *testing.T) {
	nsCheckLeaks(t)
	for _, mode := range []string{"user", "kernel"} {
		t.Run(mode, func(t *testing.T) { testNetnsPeerVanishes(t, mode) })
	}
}

func testNetnsPeerVanishes(t *testing.T, mode string) {
	l := newNsLab(t)
	c, r, s1, s2 := l.netns("c"), l.netns("r"), l.netns("s1"), l.netns("s2")
	l.link(c, "10.200.1.1/24", r, "10.200.1.2/24")
	_, s1Dev := l.link(r, "10.200.2.1/24", s1, "10.200.2.2/24")
	l.link(r, "10.200.3.1/24", s2, "10.200.3.2/24")
	srv1 := startNsEchoServer(t, s1, nsServerTCP)
	srv2 := startNsEchoServer(t, s2, nsServer2TCP)
	const idle = 2 * time.Second
	d := startNsDaemon(t, r, "--listen", nsRelayTCP, "--to", nsServerTCP+","+nsServer2TCP, "--mode", mode, "--idle", idle.String())

	// Flow A (round-robin: server 1) streams as fast as it can.
	a := nsDialTCP(t, c, nsRelayTCP)
	nsWaitFor(t, 5*time.Second, "flow A at server 1", func() bool { return srv1.connections() == 1 })
	var aEnds sync.WaitGroup
	var aWriteEnd, aReadEnd atomic.Int64
	var aWriteErr, aReadErr atomic.Value
	aEnds.Add(2)
	go func() {
		defer aEnds.Done()
		buf := nsRandom(64 << 10)
		for {
			if _, err := a.Write(buf); err != nil {
				aWriteErr.Store(err.Error())
				break
			}
		}
		aWriteEnd.Store(time.Now().UnixNano())
	}()
	go func() {
		defer aEnds.Done()
		buf := make([]byte, 64<<10)
		for {
			if _, err := a.Read(buf); err != nil {
				aReadErr.Store(err.Error())
				break
			}
		}
		aReadEnd.Store(time.Now().UnixNano())
	}()

	// Flow B (server 2) pings every 200 ms, below the idle time.
	b := nsDialTCP(t, c, nsRelayTCP)
	nsWaitFor(t, 5*time.Second, "flow B at server 2", func() bool { return srv2.connections() == 1 })
	stopPing := make(chan struct{})
	pingErr := make(chan error, 1)
	var pinged atomic.Int64
	go func() {
		msg, back := nsRandom(32), make([]byte, 32)
		for {
			select {
			case <-stopPing:
				pingErr <- nil
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := b.Write(msg); err != nil {
				pingErr <- err
				return
			}
			if _, err := io.ReadFull(b, back); err != nil || !bytes.Equal(back, msg) {
				pingErr <- fmt.Errorf("ping through server 2: %q, %v", back, err)
				return
			}
			pinged.Add(32)
		}
	}()

	nsWaitFor(t, 10*time.Second, "1 MiB of flow A at server 1", func() bool { return srv1.received.Load() >= 1<<20 })
	// Server 1 vanishes: its link goes (both veth ends), then its namespace; its sockets,
	// closed now, have no way out, so the relay hears nothing.
	l.ip(s1, "link", "del", s1Dev)
	vanished := time.Now()
	l.delNetns(s1)
	srv1.close()

	waited := make(chan struct{})
	go func() { aEnds.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(idle + 10*time.Second):
		t.Fatalf("flow A still open %v after its server vanished (--idle %v)", idle+10*time.Second, idle)
	}
	readEnd := time.Unix(0, aReadEnd.Load()).Sub(vanished)
	writeEnd := time.Unix(0, aWriteEnd.Load()).Sub(vanished)
	t.Logf("server 1 vanished after %d KiB of flow A; with --idle %v the relay ended A's reads %v and its writes %v later (%v; %v)",
		srv1.received.Load()>>10, idle, readEnd.Round(time.Millisecond), writeEnd.Round(time.Millisecond), aReadErr.Load(), aWriteErr.Load())
	d.running()
	// /metrics: A has ended, not by EOF, and B is the one flow left.
	nsWaitFor(t, 5*time.Second, "one active flow (B) on /metrics", func() bool {
		return metric(d.metrics(), "spliced_flows_active") == 1
	})
	if e := nsEndings(d.metrics()); e["to_target/eof"]+e["to_client/eof"] != 0 || len(e) == 0 {
		t.Errorf("splice endings after flow A ended: %v; want A's, none by eof", e)
	}

	close(stopPing)
	if err := <-pingErr; err != nil {
		t.Fatalf("flow B, to the other server, broke: %v", err)
	}
	if pinged.Load() == 0 {
		t.Fatal("flow B never pinged")
	}
	data := nsRandom(1 << 20)
	nsEchoCheck(t, b, data)
	if r := srv2.result(t, 5*time.Second); r.n != pinged.Load()+int64(len(data)) || r.err != nil {
		t.Fatalf("server 2 got %d bytes on flow B, want %d (%v)", r.n, pinged.Load()+int64(len(data)), r.err)
	}

	// Flow C: round-robin picks server 1, unreachable now; the relay fails over.
	nsEchoCheck(t, nsDialTCP(t, c, nsRelayTCP), data)
	nsCheckServerGot(t, srv2.result(t, 5*time.Second), data)

	// Server 1 comes back in a new namespace of the same name; flows D and E go to
	// server 2 and server 1 in turn.
	s1 = l.netns("s1")
	l.link(r, "10.200.2.1/24", s1, "10.200.2.2/24")
	srv1b := startNsEchoServer(t, s1, nsServerTCP)
	nsEchoCheck(t, nsDialTCP(t, c, nsRelayTCP), data)
	nsCheckServerGot(t, srv2.result(t, 5*time.Second), data)
	nsEchoCheck(t, nsDialTCP(t, c, nsRelayTCP), data)
	nsCheckServerGot(t, srv1b.result(t, 5*time.Second), data)
	if n1, n2 := srv1b.connections(), srv2.connections(); n1 != 1 || n2 != 3 {
		t.Errorf("connections: %d to the new server 1, %d to server 2; want 1 and 3 (B, C, D)", n1, n2)
	}

	d.running()
	if s := d.get("/healthz"); s != "ok\n" {
		t.Errorf("/healthz: %q", s)
	}
	mf := d.waitIdle(5 * time.Second)
	e := nsEndings(mf)
	t.Logf("splice endings: %v", e)
	if n := metric(mf, "spliced_flows_accepted_total"); n != 5 {
		t.Errorf("spliced_flows_accepted_total = %v, want 5", n)
	}
	if n := metric(mf, "spliced_target_failures_total", "target="+nsServerTCP); n != 1 {
		t.Errorf("spliced_target_failures_total{target=%s} = %v, want 1 (flow C)", nsServerTCP, n)
	}
	for _, dir := range []string{"to_target", "to_client"} {
		var all float64
		for k, v := range e {
			if strings.HasPrefix(k, dir+"/") {
				all += v
			}
		}
		if all != 5 || e[dir+"/eof"] != 4 {
			t.Errorf("%s endings %v: want 5, 4 of them eof (B to E) and flow A's not", dir, e)
		}
	}
}

// TestNetnsRandomDrop drops 3% of the TCP packets entering the relay's namespace, at
// random, through netfilter (nft's numgen, then iptables' statistic match): a transfer
// both ways completes byte-exact.
func TestNetnsRandomDrop(t *testing.T) {
	nsCheckLeaks(t)
	for _, c := range []struct{ tool, mode string }{{"nft", "user"}, {"iptables", "kernel"}} {
		tool, mode := c.tool, c.mode
		t.Run(tool+"/"+mode, func(t *testing.T) {
			tp := newNsTopo(t)
			for _, p := range [][2]string{{tp.c, tp.cDev}, {tp.r, tp.rcDev}, {tp.r, tp.rsDev}, {tp.s, tp.sDev}} {
				tp.l.smallGSO(p[0], p[1])
			}
			drop := nsRandomDrop(t, tool, tp.r, "ip protocol tcp", []string{"-p", "tcp"}, 3)
			srv := startNsEchoServer(t, tp.s, nsServerTCP)
			d := startNsDaemon(t, tp.r, "--listen", nsRelayTCP, "--to", nsServerTCP, "--mode", mode, "--idle", "20s")
			const size = 4 << 20
			data := nsRandom(size)
			el := nsEchoCheck(t, nsDialTCP(t, tp.c, nsRelayTCP), data)
			nsCheckServerGot(t, srv.result(t, 10*time.Second), data)
			n := drop.drops(t)
			t.Logf("%s (%s): %d packets dropped; %d MiB each way in %.2f s (%.0f Mbit/s each way)",
				drop.tool, drop.command, n, size>>20, el.Seconds(), nsMbits(size, el))
			if n == 0 {
				t.Errorf("%s dropped no packet", drop.tool)
			}
			d.waitIdle(5 * time.Second)
		})
	}
}

// TestNetnsUDP relays numbered, checksummed datagrams from a client to an echo server
// across the namespaces: every datagram arrives intact, exactly once, and only those
// that a random netfilter drop in front of the server took are missing. The datagrams
// fit the links' 1500-byte MTU; TestNetnsUDPOverMTU sends larger ones.
func TestNetnsUDP(t *testing.T) {
	nsCheckLeaks(t)
	// UDP payloads of 40 to 1472 bytes (the 40-byte header included).
	sizes := []int{0, 1, 100, 512, 1200, 1432}
	t.Run("clean", func(t *testing.T) { nsUDPRun(t, false, sizes, 1) })
	t.Run("drop", func(t *testing.T) { nsUDPRun(t, true, sizes, 1) })
}

// TestNetnsUDPOverMTU relays datagrams larger than the links' MTU (IP fragments on the
// veths), several of a size in a row. The relay's UDP output batches same-size datagrams
// with UDP GSO (UDP_SEGMENT); the kernel refuses a batch whose segments exceed the path
// MTU with EMSGSIZE, which once ended the flow and lost its queued datagrams (loopback's
// 64 KiB MTU hid it). The socket must fall back to single datagrams and lose none.
func TestNetnsUDPOverMTU(t *testing.T) {
	nsCheckLeaks(t)
	nsUDPRun(t, false, []int{1433, 1472, 2000, 4000, 8000}, 4)
}

// nsUDPRun sends 1000 datagrams through a UDP relay, of the sizes (payload beyond the
// header) in turn, each size repeat times in a row, optionally with 5% dropped at random
// in front of the server, and checks what arrives at each end against what was sent and
// dropped, and against the relay's metrics.
func nsUDPRun(t *testing.T, withDrop bool, sizes []int, repeat int) {
	tp := newNsTopo(t)
	for _, p := range [][2]string{{tp.c, tp.cDev}, {tp.r, tp.rcDev}, {tp.r, tp.rsDev}, {tp.s, tp.sDev}} {
		tp.l.smallGSO(p[0], p[1])
	}
	var drop *nsDropper
	if withDrop {
		drop = nsRandomDrop(t, "", tp.s, "udp dport 8001", []string{"-p", "udp", "--dport", "8001"}, 5)
	}
	srv := startNsUDPServer(t, tp.s, nsServerUDP)
	d := startNsDaemon(t, tp.r, "--udp", "--listen", nsRelayUDP, "--to", nsServerUDP, "--idle", "10s")
	cl := startNsUDPClient(t, tp.c, nsRelayUDP)
	const count = 1000
	var sentBytes int64
	for i := range count {
		n := sizes[i/repeat%len(sizes)]
		cl.send(t, uint64(i), n)
		sentBytes += int64(nsUDPHeader + n)
		if i%10 == 9 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	// Wait until the echoes stop coming.
	last, quiet := cl.count(), time.Now()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && time.Since(quiet) < 500*time.Millisecond; time.Sleep(20 * time.Millisecond) {
		if n := cl.count(); n != last || n < srv.count() {
			last, quiet = n, time.Now()
		}
		if cl.count() == count {
			break
		}
	}
	sGot, sBad, sDup, sBytes := srv.stats()
	cGot, cBad, cDup, _ := cl.stats()
	var dropped int64
	if drop != nil {
		dropped = drop.drops(t)
	}
	t.Logf("%d datagrams sent (%d bytes); server got %d, client got %d back; netfilter dropped %d; corrupt %d/%d, duplicated %d/%d",
		count, sentBytes, sGot, cGot, dropped, sBad, cBad, sDup, cDup)
	if drop != nil {
		t.Logf("drop rule: %s (%s)", drop.command, drop.tool)
	}
	if sBad+cBad+sDup+cDup != 0 {
		t.Errorf("corrupt or duplicated datagrams: server %d/%d, client %d/%d", sBad, sDup, cBad, cDup)
	}
	if sGot+dropped != count {
		t.Errorf("server got %d datagrams and netfilter dropped %d, of %d sent: lost where the link did not drop them\n%s",
			sGot, dropped, count, nsUDPErrors(tp))
	}
	if cGot != sGot {
		t.Errorf("client got %d datagrams back of the %d the server echoed\n%s", cGot, sGot, nsUDPErrors(tp))
	}
	if withDrop && dropped == 0 {
		t.Errorf("%s dropped no datagram", drop.tool)
	}
	mf := d.metrics()
	if n := metric(mf, "spliced_bytes_total", "direction=to_target"); n != float64(sentBytes) {
		t.Errorf("relay moved %v bytes to the target, want every datagram's %d", n, sentBytes)
	}
	if n := metric(mf, "spliced_bytes_total", "direction=to_client"); n != float64(sBytes) {
		t.Errorf("relay moved %v bytes to the client, want the %d the server echoed", n, sBytes)
	}
	if n := metric(mf, "spliced_flows_accepted_total"); n != 1 {
		t.Errorf("%v UDP flows for one client (splice endings %v)", n, nsEndings(mf))
	}
}

// nsUDPErrors is the UDP lines of /proc/net/snmp in each namespace, to tell where
// datagrams went missing.
func nsUDPErrors(tp *nsTopo) string {
	var b strings.Builder
	for _, ns := range []string{tp.c, tp.r, tp.s} {
		out, _ := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "Udp:") {
				fmt.Fprintf(&b, "%s %s\n", ns, line)
			}
		}
	}
	return b.String()
}

// A test datagram: sequence number (8 bytes), SHA-256 of the payload, payload.
const nsUDPHeader = 8 + sha256.Size

func nsDatagram(seq uint64, n int) []byte {
	b := make([]byte, nsUDPHeader+n)
	bin.BigEndian.PutUint64(b, seq)
	rand.Read(b[nsUDPHeader:])
	sum := sha256.Sum256(b[nsUDPHeader:])
	copy(b[8:], sum[:])
	return b
}

// nsCheckDatagram returns the sequence number of a datagram, and whether it is intact.
func nsCheckDatagram(b []byte) (uint64, bool) {
	if len(b) < nsUDPHeader {
		return 0, false
	}
	sum := sha256.Sum256(b[nsUDPHeader:])
	return bin.BigEndian.Uint64(b), bytes.Equal(sum[:], b[8:nsUDPHeader])
}

// nsSeqSet counts intact, corrupt and duplicated datagrams.
type nsSeqSet struct {
	mu             sync.Mutex
	seen           map[uint64]bool
	bad, dup, size int64
}

func (s *nsSeqSet) add(b []byte) {
	seq, ok := nsCheckDatagram(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !ok:
		s.bad++
	case s.seen[seq]:
		s.dup++
	default:
		s.seen[seq] = true
		s.size += int64(len(b))
	}
}

func (s *nsSeqSet) count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.seen))
}

func (s *nsSeqSet) stats() (got, bad, dup, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.seen)), s.bad, s.dup, s.size
}

// nsUDPServer echoes every intact datagram.
type nsUDPServer struct {
	nsSeqSet
	pc net.PacketConn
}

func startNsUDPServer(t *testing.T, ns, addr string) *nsUDPServer {
	t.Helper()
	s := &nsUDPServer{nsSeqSet: nsSeqSet{seen: map[uint64]bool{}}}
	if err := inNetns(ns, func() (err error) { s.pc, err = net.ListenPacket("udp", addr); return }); err != nil {
		t.Fatalf("listen on udp %s in %s: %v", addr, ns, err)
	}
	s.pc.(*net.UDPConn).SetReadBuffer(4 << 20)
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { s.pc.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := s.pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.add(buf[:n])
			if _, ok := nsCheckDatagram(buf[:n]); ok {
				s.pc.WriteTo(buf[:n], from)
			}
		}
	}()
	return s
}

// nsUDPClient sends datagrams to the relay and checks what comes back.
type nsUDPClient struct {
	nsSeqSet
	c net.Conn
}

func startNsUDPClient(t *testing.T, ns, addr string) *nsUDPClient {
	t.Helper()
	c, err := nsDial(context.Background(), ns, "udp", addr)
	if err != nil {
		t.Fatalf("dial udp %s from %s: %v", addr, ns, err)
	}
	c.(*net.UDPConn).SetReadBuffer(4 << 20)
	cl := &nsUDPClient{nsSeqSet: nsSeqSet{seen: map[uint64]bool{}}, c: c}
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { c.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					continue // an ICMP error before the relay was there; UDP goes on
				}
				return
			}
			cl.add(buf[:n])
		}
	}()
	return cl
}

func (cl *nsUDPClient) send(t *testing.T, seq uint64, n int) {
	t.Helper()
	if _, err := cl.c.Write(nsDatagram(seq, n)); err != nil {
		t.Fatalf("send datagram %d: %v", seq, err)
	}
}

// nsWaitFor polls cond every 5 ms until it holds, failing the test after within.
func nsWaitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(within); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no %s within %v", what, within)
		}
	}
}
