package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// The helpers of netns_test.go: network namespaces joined by veth pairs (a "lab"), the
// daemon started inside one of them, and TCP endpoints whose sockets are made inside a
// namespace by a goroutine that has joined it.

// nsPrefix starts the name of every namespace these tests make; the pid follows, so that
// runs side by side do not meet and a run that was killed can be cleaned up by the next.
const nsPrefix = "snt-"

var (
	netnsOnce sync.Once
	netnsSkip string // why the netns tests cannot run here, or ""
)

// requireNetns skips t, with one line naming what is missing, unless this process can
// make network namespaces and veth pairs and has ip and tc.
func requireNetns(t *testing.T) {
	t.Helper()
	netnsOnce.Do(func() {
		if runtime.GOOS != "linux" {
			netnsSkip = "network namespaces: Linux only"
			return
		}
		if os.Geteuid() != 0 {
			netnsSkip = "network namespaces: need root"
			return
		}
		for _, tool := range []string{"ip", "tc"} {
			if _, err := exec.LookPath(tool); err != nil {
				netnsSkip = tool + " (iproute2) not installed"
				return
			}
		}
		removeStaleNetns()
		probe := fmt.Sprintf("%s%d-probe", nsPrefix, os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
			netnsSkip = "ip netns add: kernel refused: " + nsFirstLine(out, err)
			return
		}
		defer exec.Command("ip", "netns", "del", probe).Run()
		if out, err := exec.Command("ip", "-n", probe, "link", "add", "pa", "type", "veth", "peer", "name", "pb").CombinedOutput(); err != nil {
			netnsSkip = "ip link add type veth: kernel refused: " + nsFirstLine(out, err)
		}
	})
	if netnsSkip != "" {
		t.Skip(netnsSkip)
	}
}

// nsCheckLeaks makes t fail if, once it and its cleanups are done, this process has more
// goroutines or open descriptors than when it started. Call it first in a test.
func nsCheckLeaks(t *testing.T) {
	t.Helper()
	requireNetns(t) // after this, the process has made its poller and run commands
	ignore := goleak.IgnoreCurrent()
	before := nsOpenFDs()
	t.Cleanup(func() {
		goleak.VerifyNone(t, ignore, goleak.IgnoreAnyFunction("github.com/softnet-go/softnet/netq.(*Worker).loop"))
		var after int
		for end := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if after = nsOpenFDs(); after <= before || time.Now().After(end) {
				break
			}
		}
		if after > before {
			t.Errorf("%d descriptors open after the test, %d before", after, before)
		}
	})
}

func nsOpenFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// removeStaleNetns deletes the namespaces left by runs of these tests whose process is
// gone (killed before its cleanup ran).
func removeStaleNetns() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, nsPrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			exec.Command("ip", "netns", "del", name).Run()
		}
	}
}

// nsFirstLine is the first line of a command's output, or its error.
func nsFirstLine(out []byte, err error) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if s == "" && err != nil {
		s = err.Error()
	}
	return s
}

// nsLab is a set of network namespaces made for one test and deleted when it ends.
type nsLab struct {
	t     *testing.T
	id    string // "snt-PID-N"
	mu    sync.Mutex
	names map[string]bool
	links int
}

var nsLabSeq atomic.Int32

func newNsLab(t *testing.T) *nsLab {
	t.Helper()
	requireNetns(t)
	l := &nsLab{t: t, id: fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), nsLabSeq.Add(1)), names: map[string]bool{}}
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for name := range l.names {
			l.delNetns(name)
		}
	})
	return l
}

// delNetns deletes a namespace of the lab, if it is there. (Deleting the last veth of a
// pair deletes both ends; deleting a namespace deletes its veths once no socket holds it.)
func (l *nsLab) delNetns(name string) {
	if _, err := os.Stat("/var/run/netns/" + name); err != nil {
		return
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		l.t.Errorf("ip netns del %s: %v: %s", name, err, out)
	}
}

// netns makes the namespace ID-tag with its loopback up and returns its name.
func (l *nsLab) netns(tag string) string {
	l.t.Helper()
	name := l.id + "-" + tag
	l.mu.Lock()
	l.names[name] = true
	l.mu.Unlock()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		l.t.Skip("ip netns add: kernel refused: " + nsFirstLine(out, err))
	}
	l.ip(name, "link", "set", "lo", "up")
	return name
}

// ip runs `ip -n NS ARGS` and fails the test if it fails.
func (l *nsLab) ip(ns string, args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
}

// link joins namespaces a and b with a new veth pair, made inside them (so its names,
// which include the pid, never appear in this namespace), addressed aAddr and bAddr
// (CIDR), and returns the names of the two ends.
func (l *nsLab) link(a, aAddr, b, bAddr string) (string, string) {
	l.t.Helper()
	l.mu.Lock()
	l.links++
	n := l.links
	l.mu.Unlock()
	base := fmt.Sprintf("v%d%s%d", os.Getpid(), strings.TrimPrefix(l.id[strings.LastIndexByte(l.id, '-'):], "-"), n)
	devA, devB := base+"a", base+"b"
	if len(devA) > 15 {
		devA, devB = devA[len(devA)-15:], devB[len(devB)-15:]
	}
	if out, err := exec.Command("ip", "link", "add", devA, "netns", a, "type", "veth", "peer", "name", devB, "netns", b).CombinedOutput(); err != nil {
		l.t.Skip("ip link add type veth: kernel refused: " + nsFirstLine(out, err))
	}
	l.ip(a, "addr", "add", aAddr, "dev", devA)
	l.ip(b, "addr", "add", bAddr, "dev", devB)
	l.ip(a, "link", "set", devA, "up")
	l.ip(b, "link", "set", devB, "up")
	return devA, devB
}

// smallGSO makes dev in ns put segment-sized packets on the link (gso_max_size 1500,
// gso_max_segs 1: TCP and UDP GSO batches are cut up before the veth), so that queue
// limits and netfilter see and count real packets, one datagram each, as on a NIC; if ip
// or the kernel cannot, the test goes on with GSO packets and says so.
func (l *nsLab) smallGSO(ns, dev string) {
	l.t.Helper()
	if out, err := exec.Command("ip", "-n", ns, "link", "set", dev, "gso_max_size", "1500", "gso_max_segs", "1").CombinedOutput(); err != nil {
		l.t.Logf("ip link set %s gso_max_size 1500 gso_max_segs 1: %s (going on with GSO packets)", dev, nsFirstLine(out, err))
	}
}

// tc runs `tc -n NS ARGS`, skipping the test with one line if the kernel refuses it.
func (l *nsLab) tc(ns string, args ...string) {
	l.t.Helper()
	if out, err := exec.Command("tc", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		kind := strings.Join(args[:min(len(args), 2)], " ")
		for _, q := range []string{"tbf", "htb", "pfifo", "bfifo"} {
			for _, a := range args {
				if a == q {
					kind = args[0] + " " + args[1] + " " + q
				}
			}
		}
		l.t.Skipf("tc %s: kernel refused: %s", kind, nsFirstLine(out, err))
	}
}

var nsQdiscDropped = regexp.MustCompile(`dropped (\d+)`)

// qdiscDrops is the number of packets the qdiscs of dev in ns have dropped.
func (l *nsLab) qdiscDrops(ns, dev string) int64 {
	out, err := exec.Command("tc", "-n", ns, "-s", "qdisc", "show", "dev", dev).CombinedOutput()
	if err != nil {
		l.t.Logf("tc -s qdisc show: %v: %s", err, out)
		return -1
	}
	var n int64
	// A parent's count includes its children's for htb; take the root's.
	if m := nsQdiscDropped.FindSubmatch(out); m != nil {
		n, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	return n
}

// inNetns runs fn on an OS thread that has joined the network namespace ns: sockets fn
// makes belong to ns for good. The thread goes back to this process's namespace after fn;
// if it cannot, it stays locked and ends with its goroutine.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		target, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			orig.Close()
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = unix.Setns(int(target.Fd()), unix.CLONE_NEWNET)
		target.Close()
		if err != nil {
			orig.Close()
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
		errc <- ferr
	}()
	return <-errc
}

// nsDial connects from namespace ns to addr.
func nsDial(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() error {
		var err error
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// nsDialTCP connects from ns to addr, with a deadline of 60 s, closed when t ends.
func nsDialTCP(t *testing.T, ns, addr string) *net.TCPConn {
	t.Helper()
	c, err := nsDial(context.Background(), ns, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ns, err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// nsEchoResult is what an echo server saw on one connection, up to the client's EOF.
type nsEchoResult struct {
	n   int64
	sum [sha256.Size]byte
	err error
}

// nsEchoServer echoes every connection to a listener inside a namespace, hashing what it
// gets.
type nsEchoServer struct {
	ln       net.Listener
	received atomic.Int64 // bytes, over every connection
	results  chan nsEchoResult
	mu       sync.Mutex
	open     map[net.Conn]bool
	accepted int
	wg       sync.WaitGroup
	once     sync.Once
}

func startNsEchoServer(t *testing.T, ns, addr string) *nsEchoServer {
	t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	s := &nsEchoServer{ln: ln, results: make(chan nsEchoResult, 64), open: map[net.Conn]bool{}}
	t.Cleanup(s.close)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.open[c] = true
			s.accepted++
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c.(*net.TCPConn))
				s.mu.Lock()
				delete(s.open, c)
				s.mu.Unlock()
				c.Close()
			}()
		}
	}()
	return s
}

func (s *nsEchoServer) serve(c *net.TCPConn) {
	c.SetDeadline(time.Now().Add(90 * time.Second))
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var r nsEchoResult
	for {
		n, err := c.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			r.n += int64(n)
			s.received.Add(int64(n))
			if _, werr := c.Write(buf[:n]); werr != nil {
				r.err = werr
				break
			}
		}
		if err == io.EOF {
			c.CloseWrite()
			break
		}
		if err != nil {
			r.err = err
			break
		}
	}
	copy(r.sum[:], h.Sum(nil))
	s.results <- r
}

// connections is the number of connections accepted so far.
func (s *nsEchoServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// result waits for the result of the next connection to end.
func (s *nsEchoServer) result(t *testing.T, within time.Duration) nsEchoResult {
	t.Helper()
	select {
	case r := <-s.results:
		return r
	case <-time.After(within):
		t.Fatalf("echo server: no connection ended within %v", within)
	}
	return nsEchoResult{}
}

// close closes the listener and every open connection, and waits for the goroutines.
func (s *nsEchoServer) close() {
	s.once.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		for c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// nsEchoCheck sends data over c, half-closes, reads the echo to EOF and checks it
// byte-exact by SHA-256; it returns the time it took.
func nsEchoCheck(t *testing.T, c *net.TCPConn, data []byte) time.Duration {
	t.Helper()
	el, err := nsEchoTransfer(c, data)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

// nsEchoTransfer is nsEchoCheck returning its failure, for use off the test's goroutine.
func nsEchoTransfer(c *net.TCPConn, data []byte) (time.Duration, error) {
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	el := time.Since(start)
	if e := <-werr; e != nil {
		return el, fmt.Errorf("sending %d bytes: %v (after %v)", len(data), e, el)
	}
	if err != nil {
		return el, fmt.Errorf("echo: %d bytes back of %d: %v (after %v)", n, len(data), err, el)
	}
	want := sha256.Sum256(data)
	if got := h.Sum(nil); n != int64(len(data)) || string(got) != string(want[:]) {
		return el, fmt.Errorf("echo: %d bytes back of %d, sha256 %x, want %x", n, len(data), got[:8], want[:8])
	}
	return el, nil
}

// nsCheckServerGot checks that an echo server got exactly data on a connection.
func nsCheckServerGot(t *testing.T, r nsEchoResult, data []byte) {
	t.Helper()
	if want := sha256.Sum256(data); r.err != nil || r.n != int64(len(data)) || r.sum != want {
		t.Fatalf("server got %d bytes of %d (sha256 %x, want %x), err %v", r.n, len(data), r.sum[:8], want[:8], r.err)
	}
}

// nsDaemon is a `spliced run` inside a namespace, with its admin endpoint on that
// namespace's loopback.
type nsDaemon struct {
	*daemon
	ns string
}

// startNsDaemon starts `ip netns exec NS spliced run --log-format json --admin
// 127.0.0.1:6060 ARGS` and waits until it is ready.
func startNsDaemon(t *testing.T, ns string, args ...string) *nsDaemon {
	t.Helper()
	args = append([]string{"netns", "exec", ns, binary, "run", "--log-format", "json", "--log-level", "debug", "--admin", "127.0.0.1:6060"}, args...)
	d := &nsDaemon{daemon: launch(t, exec.Command("ip", args...), 15*time.Second), ns: ns}
	d.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nsDial(ctx, ns, network, addr)
	}
	return d
}

// running fails the test if the daemon has exited.
func (d *nsDaemon) running() {
	d.t.Helper()
	select {
	case <-d.exited:
		d.t.Fatalf("spliced exited with %d:\n%s", d.code, d.logText())
	default:
	}
}

// waitIdle waits (at most within) until /metrics shows no active flow, and returns the
// metrics then.
func (d *nsDaemon) waitIdle(within time.Duration) map[string]*dto.MetricFamily {
	d.t.Helper()
	mf := d.metrics()
	for end := time.Now().Add(within); metric(mf, "spliced_flows_active") != 0; mf = d.metrics() {
		if time.Now().After(end) {
			d.t.Fatalf("spliced_flows_active = %v %v after the clients closed", metric(mf, "spliced_flows_active"), within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return mf
}

// nsEndings returns the splice endings of /metrics by direction and reason.
func nsEndings(mf map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	if f := mf["spliced_splice_endings_total"]; f != nil {
		for _, m := range f.Metric {
			l := map[string]string{}
			for _, p := range m.Label {
				l[p.GetName()] = p.GetValue()
			}
			out[l["direction"]+"/"+l["reason"]] += m.GetCounter().GetValue()
		}
	}
	return out
}

// nsDropper drops a share of the packets entering a namespace through netfilter.
type nsDropper struct {
	tool    string // "nft" or "iptables"
	ns      string
	command string // the rule, as given
	count   func() (int64, error)
}

var nsNFTCounter = regexp.MustCompile(`counter packets (\d+)`)

// nsRandomDrop makes namespace ns drop percent % of the incoming packets that match
// (an nft match expression such as "ip protocol tcp", with its iptables twin ipt), at
// random, with tool: "nft" (numgen), "iptables" (the statistic match), or "" for the
// first of them that works. It skips t with one line if none does.
func nsRandomDrop(t *testing.T, tool, ns, match string, ipt []string, percent int) *nsDropper {
	t.Helper()
	var why []string
	_, nftErr := exec.LookPath("nft")
	_, iptErr := exec.LookPath("iptables")
	if tool == "iptables" {
		nftErr = errors.New("not tried")
	}
	if tool == "nft" {
		iptErr = errors.New("not tried")
	}
	if nftErr == nil {
		rule := fmt.Sprintf("%s numgen random mod 100 < %d counter drop", match, percent)
		script := "add table inet softnet_test\n" +
			"add chain inet softnet_test input { type filter hook input priority 0; policy accept; }\n" +
			"add rule inet softnet_test input " + rule + "\n"
		cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		if err == nil {
			return &nsDropper{tool: "nft", ns: ns, command: "nft add rule inet softnet_test input " + rule, count: func() (int64, error) {
				out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "softnet_test", "input").CombinedOutput()
				if err != nil {
					return 0, fmt.Errorf("%v: %s", err, out)
				}
				m := nsNFTCounter.FindSubmatch(out)
				if m == nil {
					return 0, fmt.Errorf("no counter in %q", out)
				}
				return strconv.ParseInt(string(m[1]), 10, 64)
			}}
		}
		why = append(why, "nft numgen: "+nsFirstLine(out, err))
	} else if tool != "iptables" {
		why = append(why, "nft not installed")
	}
	if iptErr == nil {
		args := append(append([]string{"-A", "INPUT"}, ipt...), "-m", "statistic", "--mode", "random",
			"--probability", fmt.Sprintf("%.2f", float64(percent)/100), "-j", "DROP")
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "iptables"}, args...)...).CombinedOutput()
		if err == nil {
			return &nsDropper{tool: "iptables", ns: ns, command: "iptables " + strings.Join(args, " "), count: func() (int64, error) {
				out, err := exec.Command("ip", "netns", "exec", ns, "iptables", "-L", "INPUT", "-v", "-x", "-n").CombinedOutput()
				if err != nil {
					return 0, fmt.Errorf("%v: %s", err, out)
				}
				for _, line := range strings.Split(string(out), "\n") {
					if f := strings.Fields(line); len(f) > 2 && f[2] == "DROP" {
						return strconv.ParseInt(f[0], 10, 64)
					}
				}
				return 0, fmt.Errorf("no DROP rule in %q", out)
			}}
		}
		why = append(why, "iptables statistic: "+nsFirstLine(out, err))
	} else if tool != "nft" {
		why = append(why, "iptables not installed")
	}
	t.Skip("random packet drop unavailable (apt-get install -y nftables iptables): " + strings.Join(why, "; "))
	return nil
}

// drops is the number of packets the rule has dropped.
func (d *nsDropper) drops(t *testing.T) int64 {
	t.Helper()
	n, err := d.count()
	if err != nil {
		t.Fatalf("%s counter: %v", d.tool, err)
	}
	return n
}
