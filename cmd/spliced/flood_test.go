package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	bin "encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/softnet-go/softnet/relay"
	"github.com/softnet-go/softnet/socket"
)

// The flood tests (at the memory Limit flows wait and resume, nothing is lost, and
// RSS stays bounded) drive the built daemon with many flows whose targets stop reading. The
// defaults are CI's bounded form; -flood.stall=10s holds the stall longer.
var (
	floodStall   = flag.Duration("flood.stall", 3*time.Second, "how long the flood tests' sinks stop reading")
	floodFlows   = flag.Int("flood.flows", 1000, "TCP flows of TestFloodTCP")
	floodSockbuf = flag.String("flood.sockbuf", "128KiB", "--sockbuf of the flood tests' daemon (0: autotuning, no kernel bound asserted)")
)

const (
	floodMemLimit = 16 << 20 // --mem-limit of TestFloodTCP
	floodPerFlow  = 1 << 20  // bytes each TCP flow pushes

	// rssOverhead is what the daemon's RSS may exceed the memory limit by during the
	// flood: the Go runtime and heap (the Socket, netq and flow records of 2,000 sockets
	// and the zones' bookkeeping, about 4 KiB a socket), the binary's text and the
	// admin endpoint. Measured on linux/amd64 (2 cores, Go 1.26): 12.5 MiB idle and
	// 42 MiB at most, the limit + 26 MiB, with 1,000 stalled flows in mode user and a
	// 16 MiB limit (figures in docs/RELIABILITY.md); the bound leaves room for GC timing.
	rssOverhead = 40 << 20

	// kernelSlack is what one socket's kernel memory may exceed its two buffers by: the
	// kernel admits one more skb to a full queue (up to 64 KiB of payload in a loopback
	// skb, as truesize) and keeps a forward allocation of up to a few pages.
	kernelSlack = 160 << 10

	// cpuIdle is the most CPU time, as a share of one core, the daemon may use while
	// every flow is stalled: waiting splices sleep, they do not poll.
	cpuIdle = 0.10

	// floodBound is the hard bound of each flood test, against deadlock.
	floodBound = 50 * time.Second
)

// procStat returns the daemon's resident set (VmRSS) in bytes and its CPU time
// (utime + stime).
func procStat(t *testing.T, pid int) (rss int64, cpu time.Duration) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(status); m != nil {
		kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
		rss = kb << 10
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	const hz = 100                              // USER_HZ, fixed at 100 on Linux
	return rss, time.Duration(utime+stime) * time.Second / hz
}

// skmem is one socket's kernel memory as sock_diag reports it (ss -m).
type skmem struct {
	state, local, peer           string
	r, rb, t, tb, f, w, o, bl, d int64
}

// charged is every byte the kernel charges the socket: the receive queue (r), the
// transmit path (t), the write queue (w), the forward allocation (f), option memory (o)
// and the backlog (bl). t and w overlap for TCP, so this over-counts, the safe way.
func (m skmem) charged() int64 { return m.r + m.t + m.w + m.f + m.o + m.bl }

var skmemRe = regexp.MustCompile(`skmem:\(r(\d+),rb(\d+),t(\d+),tb(\d+),f(\d+),w(\d+),o(\d+),bl(\d+),d(\d+)\)`)

// socketMemory returns the kernel memory of every socket of process pid, by inode: ss
// lists every socket of the network namespace with its inode (-e) and skmem (-m), and
// /proc/PID/fd says which inodes are the daemon's. (/proc/net/sockstat is per
// namespace and would count the test's own sockets too.) proto is "t" or "u".
func socketMemory(t *testing.T, pid int, proto string) map[string]skmem {
	t.Helper()
	mine := map[string]bool{}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if ino, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
			mine[strings.TrimSuffix(ino, "]")] = true
		}
	}
	out, err := exec.Command("ss", "-"+proto+"menH", "state", "all").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	socks := map[string]skmem{}
	inoRe := regexp.MustCompile(`\bino:(\d+)`)
	var rec strings.Builder
	flush := func() {
		s := rec.String()
		rec.Reset()
		ino := inoRe.FindStringSubmatch(s)
		m := skmemRe.FindStringSubmatch(s)
		if ino == nil || m == nil || !mine[ino[1]] {
			return
		}
		var v [9]int64
		for i := range v {
			v[i], _ = strconv.ParseInt(m[i+1], 10, 64)
		}
		m0 := skmem{r: v[0], rb: v[1], t: v[2], tb: v[3], f: v[4], w: v[5], o: v[6], bl: v[7], d: v[8]}
		if f := strings.Fields(s); len(f) >= 5 {
			m0.state, m0.local, m0.peer = f[0], f[3], f[4]
		}
		socks[ino[1]] = m0
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line != "" && line[0] != ' ' && line[0] != '\t' {
			flush()
		}
		rec.WriteString(line)
		rec.WriteByte('\n')
	}
	flush()
	return socks
}

// floodPattern is the stream of every flow: flow i sends floodPerFlow bytes of it from
// offset i*7919, behind an 8-byte header with i. A byte lost, doubled or moved shows as
// a mismatch: the pattern is random.
var floodPattern = sync.OnceValue(func() []byte {
	b := make([]byte, 2*floodPerFlow)
	rand.Read(b)
	return b
})

func flowData(i int) []byte {
	off := (i * 7919) % floodPerFlow
	return floodPattern()[off : off+floodPerFlow]
}

// needSS skips a test without ss(8), which reads the kernel's socket memory.
func needSS(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("no ss(8) to read kernel socket memory")
	}
}

// stallSample is what the flood tests measure while the sinks stall.
type stallSample struct {
	maxRSS, maxKernel int64
	sockets           int
	cpu               time.Duration
	wall              time.Duration
}

// sampleStall samples the daemon for d: the largest RSS and kernel socket memory seen,
// and the CPU time it used.
func sampleStall(t *testing.T, pid int, proto string, d time.Duration) stallSample {
	var s stallSample
	_, cpu0 := procStat(t, pid)
	start := time.Now()
	for {
		rss, _ := procStat(t, pid)
		s.maxRSS = max(s.maxRSS, rss)
		var k int64
		socks := socketMemory(t, pid, proto)
		for _, m := range socks {
			k += m.charged()
		}
		s.maxKernel = max(s.maxKernel, k)
		s.sockets = max(s.sockets, len(socks))
		if time.Since(start) >= d {
			break
		}
		time.Sleep(min(500*time.Millisecond, d/4))
	}
	_, cpu1 := procStat(t, pid)
	s.cpu, s.wall = cpu1-cpu0, time.Since(start)
	return s
}

// bound kills the daemon if the test has not ended within d, which ends every flow
// (the test's sockets see resets), so that a deadlock fails the test rather than hanging
// it; the function returned reports whether that happened.
func bound(t *testing.T, d *daemon, within time.Duration) func() bool {
	var fired atomic.Bool
	timer := time.AfterFunc(within, func() {
		fired.Store(true)
		d.cmd.Process.Kill()
	})
	t.Cleanup(func() { timer.Stop() })
	return fired.Load
}

// waitSettled waits until the relay has stopped moving bytes to the targets: the flood
// has filled every buffer the limit and the kernel allow.
func waitSettled(t *testing.T, d *daemon, within time.Duration) float64 {
	t.Helper()
	prev := -1.0
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		n := metric(d.metrics(), "spliced_bytes_total", "direction=to_target")
		if n == prev && n > 0 {
			return n
		}
		prev = n
	}
	t.Fatalf("the relay never settled: still moving after %v", within)
	return 0
}

// TestFloodTCP floods a TCP relay under a 16 MiB memory limit: many flows each push
// 1 MiB into sinks that do not read for a while. While they stall, the daemon's RSS
// stays within the limit and a fixed overhead, its kernel socket memory within what
// --sockbuf allows its sockets, and its CPU near idle; then the sinks read, and every
// byte of every flow arrives, in order. In mode user the bytes wait in mbufs, at the
// limit; in mode auto (splice(2) between TCP sockets) they wait in the kernel, in the
// sockets and the splice pipes.
func TestFloodTCP(t *testing.T) {
	needSS(t)
	for _, mode := range []string{"user", "auto"} {
		t.Run(mode, func(t *testing.T) { floodTCP(t, mode) })
	}
}

func floodTCP(t *testing.T, mode string) {
	flows := *floodFlows
	sockbuf := *floodSockbuf

	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce() // before tcpTarget's cleanup waits for the sinks
	var got, bad atomic.Int64
	var sinks sync.WaitGroup
	sinks.Add(flows)
	target := tcpTarget(t, func(c *net.TCPConn) {
		defer sinks.Done()
		// A small receive buffer, so that the flood stays in the relay rather than in
		// the test's own kernel buffers.
		c.SetReadBuffer(64 << 10)
		c.SetDeadline(time.Now().Add(floodBound))
		<-release
		var hdr [8]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			bad.Add(1)
			t.Errorf("sink: header: %v", err)
			return
		}
		i := int(bin.BigEndian.Uint64(hdr[:]))
		if i < 0 || i >= flows {
			bad.Add(1)
			t.Errorf("sink: flow %d", i)
			return
		}
		want := flowData(i)
		buf := make([]byte, 64<<10)
		n := 0
		for {
			k, err := c.Read(buf)
			if k > 0 {
				if n+k > len(want) || !bytes.Equal(buf[:k], want[n:n+k]) {
					bad.Add(1)
					t.Errorf("flow %d: bytes %d-%d differ from what was sent", i, n, n+k)
					return
				}
				n += k
			}
			if err != nil {
				if err != io.EOF {
					t.Errorf("flow %d: after %d bytes: %v", i, n, err)
				}
				break
			}
		}
		if n != len(want) {
			bad.Add(1)
			t.Errorf("flow %d: %d bytes of %d arrived", i, n, len(want))
		}
		got.Add(int64(n))
	})
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", mode, "--mem-limit", strconv.Itoa(floodMemLimit),
		"--sockbuf", sockbuf, "--idle", "0", "--grace", "1s", "--max-flows-per-source", "0")
	pid := d.cmd.Process.Pid
	rss0, _ := procStat(t, pid)
	deadlock := bound(t, d, floodBound+*floodStall)

	var senders sync.WaitGroup
	conns := make([]*net.TCPConn, flows)
	for i := range flows {
		c := dial(t, d.addr())
		c.SetWriteBuffer(64 << 10)
		c.SetDeadline(time.Now().Add(floodBound))
		conns[i] = c
	}
	for i, c := range conns {
		senders.Add(1)
		go func() {
			defer senders.Done()
			var hdr [8]byte
			bin.BigEndian.PutUint64(hdr[:], uint64(i))
			if _, err := c.Write(hdr[:]); err != nil {
				t.Errorf("flow %d: write: %v", i, err)
				return
			}
			if _, err := c.Write(flowData(i)); err != nil {
				t.Errorf("flow %d: write: %v", i, err)
				return
			}
			c.CloseWrite()
		}()
	}

	moved := waitSettled(t, d, 20*time.Second)
	s := sampleStall(t, pid, "t", *floodStall)
	if n, err := relay.ParseSize(sockbuf); err != nil {
		t.Fatal(err)
	} else if n > 0 {
		// Every socket of the daemon has the buffers --sockbuf asked for (Linux keeps
		// twice the size) and holds no more than they allow — except what bulk flows
		// borrow from the daemon's buffer budget: a socket may have its buffers raised
		// to the budget's bulk size, or still hold what it queued under a loan just
		// given back. (Not the listeners, nor the admin endpoint's connections.)
		_, relayPort, _ := net.SplitHostPort(d.addr())
		checked := 0
		var borrowed int64
		for ino, m := range socketMemory(t, pid, "t") {
			if _, port, _ := net.SplitHostPort(m.local); m.state == "LISTEN" || port != relayPort && m.peer != target {
				continue
			}
			checked++
			bulk := int64(2 * socket.DefaultBulkBuffer)
			if (m.rb != 2*n && m.rb != bulk) || (m.tb != 2*n && m.tb != bulk) {
				t.Errorf("socket %s: kernel buffers rb %d tb %d, want %d each (--sockbuf %s) or a loan of %d", ino, m.rb, m.tb, 2*n, sockbuf, bulk)
				break
			}
			borrowed += m.rb + m.tb - 4*n
			if over := m.charged() - (m.rb + m.tb + kernelSlack); over > 0 {
				borrowed += over
			}
		}
		if borrowed > 2*relay.BulkSockBufBudget {
			t.Errorf("sockets hold %d bytes beyond --sockbuf, over twice the bulk buffer budget (%d)", borrowed, relay.BulkSockBufBudget)
		}
		t.Logf("bulk buffer loans: %.1f MiB of kernel buffer beyond --sockbuf", float64(borrowed)/(1<<20))
		if checked < 2*flows {
			t.Errorf("checked the buffers of %d sockets of the daemon, want %d", checked, 2*flows)
		}
	}
	mf := d.metrics()
	used, limit := metric(mf, "spliced_mem_used_bytes"), metric(mf, "spliced_mem_limit_bytes")
	waiters := metric(mf, "spliced_mem_waiters")
	releaseOnce()

	t.Logf("flood: %d flows, --sockbuf %s, --mem-limit %s; settled at %.0f MiB relayed", flows, sockbuf,
		relay.FormatSize(floodMemLimit), moved/(1<<20))
	t.Logf("stalled %v: RSS idle %.1f MiB, max %.1f MiB (limit + %.1f MiB); kernel socket memory max %.1f MiB over %d sockets (%.0f KiB each); "+
		"CPU %v (%.1f%% of a core); mem used %.1f MiB of %.0f MiB, %v waiters",
		s.wall.Round(time.Millisecond), mib(rss0), mib(s.maxRSS), mib(s.maxRSS-floodMemLimit), mib(s.maxKernel), s.sockets,
		float64(s.maxKernel)/float64(max(s.sockets, 1))/1024, s.cpu, 100*s.cpu.Seconds()/s.wall.Seconds(), used/(1<<20), limit/(1<<20), waiters)

	if limit != floodMemLimit {
		t.Errorf("spliced_mem_limit_bytes = %v, want %d", limit, floodMemLimit)
	}
	if used > limit {
		t.Errorf("spliced_mem_used_bytes %v over the limit %v", used, limit)
	}
	if moved >= float64(flows)*floodPerFlow {
		t.Errorf("every byte (%.0f) moved before the sinks read: the flood did not stall anything", moved)
	}
	if s.maxRSS > floodMemLimit+rssOverhead {
		t.Errorf("RSS %.1f MiB while stalled: over the %.0f MiB limit + %.0f MiB overhead", mib(s.maxRSS), mib(floodMemLimit), mib(rssOverhead))
	}
	if n, err := relay.ParseSize(sockbuf); err != nil {
		t.Fatal(err)
	} else if n > 0 {
		// Linux keeps twice the size set for each buffer, receive and send.
		bound := int64(s.sockets) * (2*2*n + kernelSlack)
		if s.maxKernel > bound {
			t.Errorf("kernel socket memory %.1f MiB over %d sockets: over %.1f MiB (2 × 2 × %s + slack each)",
				mib(s.maxKernel), s.sockets, mib(bound), sockbuf)
		}
	}
	if s.sockets < 2*flows {
		t.Errorf("ss found %d sockets of the daemon, want at least %d: kernel memory not measured", s.sockets, 2*flows)
	}
	if share := s.cpu.Seconds() / s.wall.Seconds(); share > cpuIdle {
		t.Errorf("the daemon used %v of CPU in %v of stall (%.0f%% of a core): a busy loop?", s.cpu, s.wall, 100*share)
	}

	senders.Wait()
	sinks.Wait()
	if deadlock() {
		t.Fatalf("no end within %v: deadlock? (the daemon was killed)", floodBound+*floodStall)
	}
	if want := int64(flows) * floodPerFlow; got.Load() != want || bad.Load() != 0 {
		t.Fatalf("%d bytes of %d arrived intact; %d flows bad", got.Load(), want, bad.Load())
	}
	mf = d.metrics()
	sleeps := 0.0
	for _, m := range mf["spliced_zone_sleeps_total"].GetMetric() {
		sleeps += m.GetCounter().GetValue()
	}
	wakeups := metric(mf, "spliced_mem_wakeups_total")
	refused := metric(mf, "spliced_mem_refused_total")
	t.Logf("bytes lost: 0; spliced_zone_sleeps_total %v, spliced_mem_refused_total %v, spliced_mem_wakeups_total %v, peak %.1f MiB",
		sleeps, refused, wakeups, metric(mf, "spliced_mem_peak_bytes")/(1<<20))
	if mode == "user" && sleeps == 0 && refused == 0 {
		t.Errorf("no zone sleeps and no refusals at the limit: the flood never reached it")
	}
	if peak := metric(mf, "spliced_mem_peak_bytes"); peak > floodMemLimit {
		t.Errorf("spliced_mem_peak_bytes %v over the limit", peak)
	}
	// Every flow ends: nothing waits for memory that never comes back.
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mf = d.metrics()
		if metric(mf, "spliced_flows_active") == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%v flows still active after every byte arrived", metric(mf, "spliced_flows_active"))
		}
	}
	if n := metric(mf, "spliced_bytes_total", "direction=to_target"); n != float64(flows)*(floodPerFlow+8) {
		t.Errorf("spliced_bytes_total to_target = %v, want %d", n, flows*(floodPerFlow+8))
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// udpDatagram is the size of the flood's datagrams: a header of client, sequence number
// and CRC-32 of the payload, and the payload.
const (
	udpDatagram = 1024
	udpClients  = 8
	udpMemLimit = 256 << 10
)

// udpPayload fills b (behind its 12-byte header) with client c's datagram seq and sets
// the header.
func udpPayload(b []byte, c, seq int) {
	p := floodPattern()
	off := (c*100003 + seq*131) % (len(p) - udpDatagram)
	copy(b[12:], p[off:])
	bin.BigEndian.PutUint32(b[0:], uint32(c))
	bin.BigEndian.PutUint32(b[4:], uint32(seq))
	bin.BigEndian.PutUint32(b[8:], crc32.ChecksumIEEE(b[12:]))
}

// udpDrops returns the datagrams the kernel dropped at the sockets of process pid (the
// sk_drops ss reports as skmem d: a full receive buffer), or, with pid 0, at the socket
// bound to local.
func udpDrops(t *testing.T, pid int, local string) int64 {
	t.Helper()
	if pid != 0 {
		var n int64
		for _, m := range socketMemory(t, pid, "u") {
			n += m.d
		}
		return n
	}
	out, err := exec.Command("ss", "-umnH", "state", "all", "src", local).Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	m := skmemRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("ss: no socket at %s:\n%s", local, out)
	}
	n, _ := strconv.ParseInt(m[9], 10, 64)
	return n
}

// TestFloodUDP floods a UDP relay under a 256 KiB memory limit with datagrams from several
// clients, faster than its target reads. Datagrams may be dropped
// where a receive buffer is full, but each is accounted for: every datagram sent was
// relayed (spliced_bytes_total) or dropped at the relay's sockets (the kernel's drop
// counts, sk_drops) or at the memory limit (spliced_zone_failures_total), every one
// relayed was delivered or dropped at the target's socket, and every one delivered is
// intact and delivered once.
func TestFloodUDP(t *testing.T) {
	needSS(t)

	tgt, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	tgt.SetReadBuffer(256 << 10)
	// Two workers whatever the CPUs: the memory limit's floor grows with the workers
	// (mbuf.MinLimit), and past 8 it would exceed this test's limit.
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", tgt.LocalAddr().String(), "--udp", "--workers", "2",
		"--mem-limit", strconv.Itoa(udpMemLimit), "--sockbuf", "64KiB", "--idle", "30s", "--grace", "1s")
	pid := d.cmd.Process.Pid
	deadlock := bound(t, d, floodBound)

	// The target reads, slowly, while the clients send as fast as they can for the
	// flood's length; then it reads on until the relay has nothing left.
	flood := min(*floodStall, 2*time.Second)
	seen := make([]map[int]bool, udpClients)
	for i := range seen {
		seen[i] = map[int]bool{}
	}
	var sent [udpClients]atomic.Int64
	var delivered, corrupt, dup int
	var flooding atomic.Bool
	flooding.Store(true)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 65536)
		want := make([]byte, udpDatagram)
		for {
			tgt.SetReadDeadline(time.Now().Add(time.Second))
			n, err := tgt.Read(buf)
			if err != nil {
				if flooding.Load() && !errors.Is(err, net.ErrClosed) {
					continue
				}
				return
			}
			b := buf[:n]
			if n != udpDatagram || crc32.ChecksumIEEE(b[12:]) != bin.BigEndian.Uint32(b[8:]) {
				corrupt++
				continue
			}
			c, seq := int(bin.BigEndian.Uint32(b)), int(bin.BigEndian.Uint32(b[4:]))
			if c >= udpClients || int64(seq) >= sent[c].Load() {
				corrupt++
				continue
			}
			if udpPayload(want, c, seq); !bytes.Equal(b, want) {
				corrupt++
				continue
			}
			if seen[c][seq] {
				dup++
				continue
			}
			seen[c][seq] = true
			delivered++
		}
	}()
	// Each client's first datagram makes its flow; the flood starts once every flow has
	// its connected socket, so that it is spliced rather than sent on one datagram at a
	// time by the relay's listener read loop.
	conns := make([]net.Conn, udpClients)
	for c := range conns {
		conn, err := net.Dial("udp", d.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b := make([]byte, udpDatagram)
		udpPayload(b, c, 0)
		sent[c].Store(1)
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
		conns[c] = conn
	}
	for end := time.Now().Add(5 * time.Second); metric(d.metrics(), "spliced_flows_active") != udpClients; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%v UDP flows for %d clients", metric(d.metrics(), "spliced_flows_active"), udpClients)
		}
	}
	var wg sync.WaitGroup
	var maxRSS atomic.Int64
	stop := make(chan struct{})
	stopOnce := sync.OnceFunc(func() { close(stop) })
	defer func() {
		// On any way out: the clients stop, and the reader, once the target closes.
		stopOnce()
		wg.Wait()
		flooding.Store(false)
		tgt.Close()
		<-readDone
	}()
	for c, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, udpDatagram)
			for seq := 1; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				udpPayload(b, c, seq)
				sent[c].Store(int64(seq + 1)) // before the datagram can arrive
				if _, err := conn.Write(b); err != nil {
					t.Errorf("client %d: %v", c, err)
					return
				}
			}
		}()
	}
	for end := time.Now().Add(flood); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		rss, _ := procStat(t, pid)
		maxRSS.Store(max(maxRSS.Load(), rss))
	}
	stopOnce()
	wg.Wait()
	// With the clients quiet, the relay has nothing to do but pass on what it holds.
	s := sampleStall(t, pid, "u", min(*floodStall, time.Second))
	flooding.Store(false)
	<-readDone
	if deadlock() {
		t.Fatalf("no end within %v: deadlock? (the daemon was killed)", floodBound)
	}
	total := 0
	for i := range sent {
		total += int(sent[i].Load())
	}

	mf := d.metrics()
	relayed := int(metric(mf, "spliced_bytes_total", "direction=to_target")) / udpDatagram
	relayDrops := udpDrops(t, pid, "")
	targetDrops := udpDrops(t, 0, tgt.LocalAddr().String())
	failures := 0.0
	for _, m := range mf["spliced_zone_failures_total"].GetMetric() {
		failures += m.GetCounter().GetValue()
	}
	t.Logf("UDP flood: %d clients, %v, --mem-limit %s --sockbuf 64KiB: %d datagrams sent, %d relayed (metrics), %d delivered intact; "+
		"dropped %d at the relay's sockets, %d at the target's; RSS max %.1f MiB; CPU while stalled %v in %v; "+
		"spliced_mem_peak_bytes %.0f KiB, spliced_mem_refused_total %v, spliced_zone_failures_total %v",
		udpClients, flood, relay.FormatSize(udpMemLimit), total, relayed, delivered, relayDrops, targetDrops, mib(maxRSS.Load()),
		s.cpu, s.wall.Round(time.Millisecond), metric(mf, "spliced_mem_peak_bytes")/1024, metric(mf, "spliced_mem_refused_total"),
		failures)

	if corrupt != 0 || dup != 0 {
		t.Errorf("%d datagrams corrupt, %d delivered twice", corrupt, dup)
	}
	if relayDrops+targetDrops == 0 {
		t.Errorf("no datagram dropped anywhere: the flood did not overflow the target")
	}
	// Sent but not relayed: dropped by the kernel at the relay's full sockets, or by the
	// relay itself, which counts each (spliced_datagrams_dropped_total). Every datagram
	// is accounted for; one left in a kernel queue by an input that stopped would show
	// here.
	inside := int64(total-relayed) - relayDrops
	counted := int64(0)
	for _, m := range mf["spliced_datagrams_dropped_total"].GetMetric() {
		counted += int64(m.GetCounter().GetValue())
	}
	t.Logf("dropped inside the relay (not by the kernel): %d; spliced_datagrams_dropped_total %d; %v allocations refused at the limit",
		inside, counted, failures)
	if inside != counted {
		t.Errorf("%d datagrams sent but not relayed; the relay's sockets dropped %d and the relay counted %d: %d unaccounted for",
			total-relayed, relayDrops, counted, inside-counted)
	}
	if lost := relayed - delivered; int64(lost) != targetDrops {
		t.Errorf("%d datagrams relayed but not delivered; the target's socket dropped %d", lost, targetDrops)
	}
	if peak := metric(mf, "spliced_mem_peak_bytes"); peak > udpMemLimit {
		t.Errorf("spliced_mem_peak_bytes %v over the limit", peak)
	}
	if maxRSS.Load() > udpMemLimit+rssOverhead {
		t.Errorf("RSS %.1f MiB: over the limit + overhead", mib(maxRSS.Load()))
	}
	if share := s.cpu.Seconds() / s.wall.Seconds(); share > cpuIdle {
		t.Errorf("the daemon used %v of CPU in %v with no datagram to move: a busy loop?", s.cpu, s.wall)
	}
}

// TestSockbufFlag checks that --sockbuf and the sockbuf key are documented and that a bad
// size exits 2 naming the flag (or key) and the value.
func TestSockbufFlag(t *testing.T) {
	if code, out, _ := spliced(t, "run", "--help"); code != 0 || !strings.Contains(out, "--sockbuf SIZE") || !strings.Contains(out, "(default 256KiB)") {
		t.Errorf("run --help: exit %d, no --sockbuf SIZE with its default:\n%s", code, out)
	}
	for _, tc := range []struct{ value, want string }{
		{"1KiB", "--sockbuf 1024: must be 0"},
		{"2GiB", "--sockbuf 2147483648: must be 0"},
		{"-1", `invalid value "-1" for flag --sockbuf`},
		{"lots", `invalid value "lots" for flag --sockbuf`},
	} {
		code, _, stderr := spliced(t, "run", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--sockbuf", tc.value)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("--sockbuf %s: exit %d, %q; want 2 and %q", tc.value, code, stderr, tc.want)
		}
	}
	file := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(file, []byte("sockbuf = \"3KiB\"\n[[relay]]\nlisten = \"127.0.0.1:0\"\ntargets = [\"127.0.0.1:1\"]\n"), 0o644)
	if code, _, stderr := spliced(t, "run", "--config", file); code != 2 || !strings.Contains(stderr, `sockbuf = "3KiB"`) {
		t.Errorf("sockbuf = \"3KiB\": exit %d, %q", code, stderr)
	}
}
