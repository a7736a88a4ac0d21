package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
)

// relayProc is one relay under test, running as its own process (or, for the direct
// path, no process: listen is the target itself).
type relayProc struct {
	*proc   // nil for the direct path
	name    string
	softnet bool
	listen  string
}

// pid is the relay process's id, 0 for the direct path (no relay CPU to read).
func (rp *relayProc) pid() int {
	if rp.proc == nil || rp.cmd.Process == nil {
		return 0
	}
	return rp.cmd.Process.Pid
}

func (rp *relayProc) stop() {
	if rp.proc != nil {
		rp.proc.stop()
	}
}

// relaySpec says how to start a relay from listen to target.
type relaySpec struct {
	name    string
	softnet bool
	// direct is the path with no relay: the clients connect to the target itself.
	direct bool
	// tool names the file of results/configs/ that gets this relay's command line.
	tool  string
	start func(listen, target, dir string) *exec.Cmd
}

// Row is how the row of every relay scenario begins: the relay it ran through.
type Row struct {
	Relay   string `json:"relay"`
	Softnet bool   `json:"softnet"`
	// Direct is the path with no relay, the ceiling of the relays' rows.
	Direct bool `json:"direct,omitempty"`
}

func (s relaySpec) row() Row { return Row{s.name, s.softnet, s.direct} }

// directSpec is the path with no relay, the ceiling of every relay row.
var directSpec = relaySpec{name: "direct (no relay)", direct: true}

var (
	procsMu sync.Mutex
	procs   = map[*exec.Cmd]bool{}
)

// killAll kills every process the harness still has running; it is safe to call twice.
func killAll() {
	procsMu.Lock()
	defer procsMu.Unlock()
	for c := range procs {
		kill(c)
		delete(procs, c)
	}
}

// kill kills c's process and its process group (socat's forks too).
func kill(c *exec.Cmd) {
	if c.Process != nil {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		_ = c.Process.Kill()
	}
}

// proc is a process the harness runs, a relay or a target server: in a process group of
// its own, its output in a log file, and killed by killAll if it still runs then.
type proc struct {
	cmd    *exec.Cmd
	logf   *os.File
	exited chan struct{}
}

// startProc starts cmd with its output in the file logPath.
func startProc(cmd *exec.Cmd, logPath string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	procsMu.Lock()
	procs[cmd] = true
	procsMu.Unlock()
	p := &proc{cmd: cmd, logf: lf, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// await waits until the process named name accepts a TCP connection on addr (with udp,
// only that it has not exited at once, then a short settle). If it exits first, or is not
// listening after 5 s, await stops it and says so.
func (p *proc) await(name, addr string, udp bool) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case <-p.exited:
			p.stop()
			b, _ := os.ReadFile(p.logf.Name())
			return fmt.Errorf("%s exited at start: %s", name, lastLine(string(b)))
		default:
		}
		if udp {
			time.Sleep(300 * time.Millisecond)
			return nil
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return fmt.Errorf("%s: not listening on %s after 5 s", name, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) stop() {
	procsMu.Lock()
	delete(procs, p.cmd)
	procsMu.Unlock()
	kill(p.cmd)
	p.logf.Close()
}

func freePort(network string) string {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startRelay starts spec relaying to target, and waits until it accepts (TCP) or for a
// short settle (UDP).
func startRelay(spec relaySpec, target, network, dir string) (*relayProc, error) {
	if spec.direct {
		return &relayProc{name: spec.name, listen: target}, nil
	}
	listen := freePort(network)
	cmd := spec.start(listen, target, dir)
	recordCmd(spec.tool, spec.name, cmd.Args)
	p, err := startProc(cmd, filepath.Join(dir, sanitize(spec.name)+".log"))
	if err != nil {
		return nil, err
	}
	if err := p.await(spec.name, listen, network == "udp"); err != nil {
		return nil, err
	}
	if network != "udp" {
		time.Sleep(100 * time.Millisecond)
	}
	return &relayProc{proc: p, name: spec.name, softnet: spec.softnet, listen: listen}, nil
}

// lastLine is the last non-empty line of a log, for one-line error messages.
func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(ls[len(ls)-1])
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, strings.ToLower(s))
}

var clkTck = 100.0 // USER_HZ on Linux

// procCPU is utime+stime in seconds of pid and every descendant of it that is alive, plus
// pid's cutime+cstime (its exited, reaped children). For every relay but socat that is
// the relay process's own utime+stime.
func procCPU(pid int) float64 {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	ticks := map[int]float64{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+2:]) // f[0] is field 3 (state)
		if len(f) < 13 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		parent[p] = pp
		ticks[p] = ut + st
		if p == pid && len(f) >= 15 {
			// cutime+cstime: the relay's children that have exited and been reaped
			// (socat's per-connection forks), so that their CPU is not lost
			cut, _ := strconv.ParseFloat(f[13], 64)
			cst, _ := strconv.ParseFloat(f[14], 64)
			ticks[p] += cut + cst
		}
	}
	var sum float64
	for p, t := range ticks {
		for q := p; q > 1; q = parent[q] {
			if q == pid {
				sum += t
				break
			}
		}
	}
	return sum / clkTck
}

// procRSS is VmRSS in bytes of pid and its live descendants.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TCPResult is one relay at one stream count.
type TCPResult struct {
	Row
	Streams     int     `json:"streams"`
	Seconds     float64 `json:"seconds"`
	Bytes       int64   `json:"bytes"`
	Gbits       float64 `json:"gbit_s"`
	RelayCPU    float64 `json:"relay_cpu_s"`
	BytesPerCPU float64 `json:"bytes_per_relay_cpu_s"`
	// AdvGbit and AdvCPU are spliced's (default flags) figure at the same stream count
	// divided by this row's (> 1: spliced is better).
	AdvGbit float64 `json:"softnet_advantage_gbit"`
	AdvCPU  float64 `json:"softnet_advantage_cpu"`
	// SamplesGbit and SamplesCPU are every round's figures (the row is the median).
	SamplesGbit []float64 `json:"samples_gbit_s,omitempty"`
	SamplesCPU  []float64 `json:"samples_bytes_per_relay_cpu_s,omitempty"`
	Err         string    `json:"error,omitempty"`
}

// tcpSink accepts connections and discards what they send, counting it.
type tcpSink struct {
	ln    net.Listener
	bytes atomic.Int64
	conns atomic.Int64
	mu    sync.Mutex
	held  []net.Conn
}

func newTCPSink() *tcpSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s := &tcpSink{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.mu.Lock()
			s.held = append(s.held, c)
			s.mu.Unlock()
			go func() {
				drain(c, &s.bytes)
				c.Close() // the relay's flow ends, as with a real target
			}()
		}
	}()
	return s
}

func (s *tcpSink) closeConns() {
	s.mu.Lock()
	for _, c := range s.held {
		c.Close()
	}
	s.held = nil
	s.mu.Unlock()
}

func (s *tcpSink) close() { s.ln.Close(); s.closeConns() }

// drain reads c until an error, counting what it reads in n.
func drain(c net.Conn, n *atomic.Int64) {
	buf := make([]byte, 256<<10)
	for {
		k, err := c.Read(buf)
		n.Add(int64(k))
		if err != nil {
			return
		}
	}
}

// stream writes to every connection from a goroutine of its own, 128 KiB at a time and
// the first byte first, while going says so and until a write fails (by deadline at the
// latest). wait waits for the writers, and returns a write error that excused does not
// excuse.
func stream(cs []net.Conn, first byte, deadline time.Time, going func() bool, excused func(error) bool) (wait func() error) {
	var werr atomic.Value
	done := each(cs, func(c net.Conn) {
		buf := make([]byte, 128<<10)
		buf[0] = first
		_ = c.SetWriteDeadline(deadline)
		for going() {
			if _, err := c.Write(buf); err != nil {
				if !excused(err) {
					werr.Store(err)
				}
				return
			}
			buf[0] = 0
		}
	})
	return func() error {
		done()
		err, _ := werr.Load().(error)
		return err
	}
}

// each runs f on every connection, each in a goroutine of its own; wait waits for them.
func each(cs []net.Conn, f func(c net.Conn)) (wait func()) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(c)
		}()
	}
	return wg.Wait
}

// dialAll opens n connections to addr; on an error it closes those it opened.
func dialAll(addr string, n int) ([]net.Conn, error) {
	cs := make([]net.Conn, 0, n)
	for range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			closeAll(cs)
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}

// runTCP streams through addr for warm+dur from streams connections and measures the
// sink's bytes and pid's CPU (pid 0: no relay) over dur.
func runTCP(sink *tcpSink, addr string, pid, streams int, warm, dur time.Duration) (TCPResult, error) {
	r := TCPResult{Streams: streams}
	ctx, cancel := context.WithTimeout(context.Background(), warm+dur+2*time.Second)
	defer cancel()
	defer sink.closeConns()
	conns, err := dialAll(addr, streams)
	if err != nil {
		return r, err
	}
	defer closeAll(conns)
	wait := stream(conns, 0, time.Now().Add(warm+dur+time.Second), func() bool { return ctx.Err() == nil },
		func(err error) bool { return ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) })
	time.Sleep(warm)
	b0, c0, t0 := sink.bytes.Load(), cpuOf(pid), time.Now()
	time.Sleep(dur)
	b1, c1, t1 := sink.bytes.Load(), cpuOf(pid), time.Now()
	cancel()
	for _, c := range conns {
		_ = c.SetWriteDeadline(time.Now())
	}
	if err := wait(); err != nil {
		return r, err
	}
	r.Seconds = t1.Sub(t0).Seconds()
	r.Bytes = b1 - b0
	r.Gbits = float64(r.Bytes) * 8 / r.Seconds / 1e9
	if pid != 0 {
		r.RelayCPU = c1 - c0
		if r.RelayCPU > 0 {
			r.BytesPerCPU = float64(r.Bytes) / r.RelayCPU
		}
	}
	if r.Bytes == 0 {
		return r, errors.New("no bytes reached the sink")
	}
	return r, nil
}

func cpuOf(pid int) float64 {
	if pid == 0 {
		return 0
	}
	return procCPU(pid)
}

// UDPResult is one UDP relay.
type UDPResult struct {
	Row
	Seconds    float64 `json:"seconds"`
	Sent       int64   `json:"sent"`
	Received   int64   `json:"received"`
	PerSec     float64 `json:"datagrams_s"`
	RelayCPU   float64 `json:"relay_cpu_s"`
	PerCPU     float64 `json:"datagrams_per_relay_cpu_s"`
	AdvPerCPU  float64 `json:"softnet_advantage_cpu"`
	AdvPerSec  float64 `json:"softnet_advantage_rate"`
	LossPct    float64 `json:"loss_pct"`
	DgramBytes int     `json:"datagram_bytes"`
	Err        string  `json:"error,omitempty"`
}

// runUDP blasts 1200-byte datagrams at addr from one client socket for warm+dur and
// counts those reaching sink.
func runUDP(sink *net.UDPConn, addr string, pid int, warm, dur time.Duration) (UDPResult, error) {
	r := UDPResult{DgramBytes: 1200}
	var got, sent atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), warm+dur+2*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		// The sink must not be what drops datagrams, or the faster relay would pay for
		// work the sink wasted: it reads in batches of 64 (recvmmsg) into a 4 MiB
		// receive buffer, with one deadline for the whole run.
		defer close(done)
		pc := ipv4.NewPacketConn(sink)
		msgs := make([]ipv4.Message, 64)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{make([]byte, 2048)}
		}
		_ = sink.SetReadDeadline(time.Now().Add(warm + dur + time.Second))
		for ctx.Err() == nil {
			n, err := pc.ReadBatch(msgs, 0)
			if err != nil {
				return
			}
			for _, m := range msgs[:n] {
				if m.N == 1200 {
					got.Add(1)
				}
			}
		}
	}()
	c, err := net.Dial("udp", addr)
	if err != nil {
		return r, err
	}
	defer c.Close()
	go func() {
		buf := make([]byte, 1200)
		for ctx.Err() == nil {
			if _, err := c.Write(buf); err == nil {
				sent.Add(1)
			}
		}
	}()
	time.Sleep(warm)
	g0, s0, c0, t0 := got.Load(), sent.Load(), procCPU(pid), time.Now()
	time.Sleep(dur)
	g1, s1, c1, t1 := got.Load(), sent.Load(), procCPU(pid), time.Now()
	cancel()
	_ = sink.SetReadDeadline(time.Now()) // the sink's ReadBatch returns
	<-done
	r.Seconds = t1.Sub(t0).Seconds()
	r.Sent, r.Received = s1-s0, g1-g0
	r.PerSec = float64(r.Received) / r.Seconds
	r.RelayCPU = c1 - c0
	if r.RelayCPU > 0 {
		r.PerCPU = float64(r.Received) / r.RelayCPU
	}
	if r.Sent > 0 {
		r.LossPct = 100 * float64(r.Sent-r.Received) / float64(r.Sent)
	}
	if r.Received == 0 {
		return r, errors.New("no datagrams reached the sink")
	}
	return r, nil
}

// IdleResult is the RSS cost of idle relayed connections, and the relay's CPU while
// idle.
type IdleResult struct {
	Row
	Conns      int     `json:"conns"`
	RSSBefore  int64   `json:"rss_before"`
	RSSAfter   int64   `json:"rss_after"`
	PerConn    float64 `json:"rss_bytes_per_conn"`
	AdvPerConn float64 `json:"softnet_advantage"`
	// FDsPerConn is the relay's open file descriptors per relayed connection (sockets,
	// and pipes where a relay holds them while idle).
	FDsPerConn float64 `json:"fds_per_conn"`
	// CPUIdlePct is the relay's CPU (% of one core) with no connection, CPUConnsPct
	// with CPUConns idle relayed connections open, each over CPUSeconds.
	CPUIdlePct  float64 `json:"cpu_pct_no_conns"`
	CPUConnsPct float64 `json:"cpu_pct_idle_conns"`
	CPUConns    int     `json:"cpu_idle_conns"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	Err         string  `json:"error,omitempty"`
}

// runIdle measures, as an operator sees it (VmRSS, no forced GC): the relay's CPU over
// cpuWin with no connection; its RSS; then it opens n connections through addr, waits
// until the sink holds them all and 2 s more, and reports the RSS growth per connection;
// then it closes all but cpuConns of them and measures the relay's CPU over cpuWin again.
func runIdle(sink *tcpSink, addr string, pid, n, cpuConns int, cpuWin time.Duration) (r IdleResult, err error) {
	r = IdleResult{Conns: n, CPUConns: min(cpuConns, n), CPUSeconds: cpuWin.Seconds()}
	defer sink.closeConns()
	base := sink.conns.Load()
	time.Sleep(300 * time.Millisecond)
	c0 := procCPU(pid)
	time.Sleep(cpuWin)
	r.CPUIdlePct = 100 * (procCPU(pid) - c0) / cpuWin.Seconds()
	r.RSSBefore = procRSS(pid)
	conns := make([]net.Conn, 0, n)
	defer func() { closeAll(conns) }() // conns as it is at the end
	fd0 := procFDs(pid)
	defer func() {
		if got := sink.conns.Load() - base; got > 0 && r.FDsPerConn == 0 {
			r.FDsPerConn = float64(procFDs(pid)-fd0) / float64(got)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	grow := growth{}
	for range n {
		// at most 256 connections ahead of the target's accepts, so that no relay's
		// accept queue (somaxconn) overflows and leaves SYN-ACKs to be retransmitted
		for int64(len(conns))-(sink.conns.Load()-base) > 256 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return r, fmt.Errorf("after %d connections: %w", len(conns), err)
		}
		conns = append(conns, c)
	}
	for sink.conns.Load()-base < int64(n) {
		if time.Now().After(deadline) || time.Now().After(lastGrowth(&grow, sink.conns.Load()).Add(5*time.Second)) {
			return r, fmt.Errorf("only %d of %d connections reached the target", sink.conns.Load()-base, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	r.RSSAfter = procRSS(pid)
	r.PerConn = float64(r.RSSAfter-r.RSSBefore) / float64(n)
	r.FDsPerConn = float64(procFDs(pid)-fd0) / float64(n)
	for _, c := range conns[r.CPUConns:] {
		c.Close()
	}
	conns = conns[:r.CPUConns]
	time.Sleep(time.Second) // the closes ripple through the relay
	c1 := procCPU(pid)
	time.Sleep(cpuWin)
	r.CPUConnsPct = 100 * (procCPU(pid) - c1) / cpuWin.Seconds()
	return r, nil
}

// growth remembers when a counter last grew.
type growth struct {
	v int64
	t time.Time
}

func lastGrowth(g *growth, v int64) time.Time {
	if v != g.v || g.t.IsZero() {
		g.v, g.t = v, time.Now()
	}
	return g.t
}

// procFDs counts pid's open file descriptors.
func procFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// udpSinkConn is the UDP target.
func udpSinkConn() *net.UDPConn {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	return c
}
