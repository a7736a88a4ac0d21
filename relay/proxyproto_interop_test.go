package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// proxyV1Max is the longest v1 header the protocol allows, CRLF included.
const proxyV1Max = 107

// tcpAddr returns "ip:port" as a *net.TCPAddr; a 4-byte IP stays 4 bytes and
// an IPv4-mapped IPv6 address stays mapped, as the kernel reports them.
func tcpAddr(s string) *net.TCPAddr {
	return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))
}

// interopCase is one client and destination, and what a receiver must read back from
// the header we send for them. A local case is a header without addresses (v1 UNKNOWN,
// v2 LOCAL); the receiver then keeps the connection's own addresses.
type interopCase struct {
	name             string
	src, dst         net.Addr
	local            bool
	v6               bool // sent as TCP6 (v1) or TCP over IPv6 (v2)
	wantSrc, wantDst netip.AddrPort
}

func interopCases() []interopCase {
	ones := "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	return []interopCase{{
		name:    "ipv4",
		src:     tcpAddr("192.0.2.1:56324"),
		dst:     tcpAddr("198.51.100.7:443"),
		wantSrc: netip.MustParseAddrPort("192.0.2.1:56324"),
		wantDst: netip.MustParseAddrPort("198.51.100.7:443"),
	}, {
		name:    "ipv6",
		src:     tcpAddr("[2001:db8::1]:1000"),
		dst:     tcpAddr("[2001:db8::2]:443"),
		v6:      true,
		wantSrc: netip.MustParseAddrPort("[2001:db8::1]:1000"),
		wantDst: netip.MustParseAddrPort("[2001:db8::2]:443"),
	}, {
		// A dual-stack listener sees an IPv4 client, and its own address, as
		// IPv4-mapped IPv6: both are sent as the IPv4 addresses they are.
		name:    "ipv4-mapped",
		src:     tcpAddr("[::ffff:10.1.2.3]:40000"),
		dst:     tcpAddr("[::ffff:10.9.8.7]:8080"),
		wantSrc: netip.MustParseAddrPort("10.1.2.3:40000"),
		wantDst: netip.MustParseAddrPort("10.9.8.7:8080"),
	}, {
		// A mapped client toward a true IPv6 address: the families differ, so both
		// go as IPv6 and the client as ::ffff:10.1.2.3.
		name:    "ipv4-mapped to ipv6",
		src:     tcpAddr("[::ffff:10.1.2.3]:40000"),
		dst:     tcpAddr("[2001:db8::2]:443"),
		v6:      true,
		wantSrc: netip.MustParseAddrPort("[::ffff:10.1.2.3]:40000"),
		wantDst: netip.MustParseAddrPort("[2001:db8::2]:443"),
	}, {
		name:    "link-local eth0",
		src:     &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0", Port: 1000},
		dst:     &net.TCPAddr{IP: net.ParseIP("fe80::2"), Zone: "eth0", Port: 443},
		v6:      true,
		wantSrc: netip.MustParseAddrPort("[fe80::1]:1000"),
		wantDst: netip.MustParseAddrPort("[fe80::2]:443"),
	}, {
		name:    "link-local lo to global",
		src:     &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "lo", Port: 1000},
		dst:     tcpAddr("[2001:db8::2]:443"),
		v6:      true,
		wantSrc: netip.MustParseAddrPort("[fe80::1]:1000"),
		wantDst: netip.MustParseAddrPort("[2001:db8::2]:443"),
	}, {
		name:    "ipv4 to ipv6",
		src:     &net.TCPAddr{IP: net.IP{192, 0, 2, 1}, Port: 56324},
		dst:     tcpAddr("[2001:db8::2]:443"),
		v6:      true,
		wantSrc: netip.MustParseAddrPort("[::ffff:192.0.2.1]:56324"),
		wantDst: netip.MustParseAddrPort("[2001:db8::2]:443"),
	}, {
		name:    "ipv6 to ipv4",
		src:     tcpAddr("[2001:db8::1]:1000"),
		dst:     &net.TCPAddr{IP: net.IP{198, 51, 100, 7}, Port: 443},
		v6:      true,
		wantSrc: netip.MustParseAddrPort("[2001:db8::1]:1000"),
		wantDst: netip.MustParseAddrPort("[::ffff:198.51.100.7]:443"),
	}, {
		// The longest v1 header there is: two 39-character addresses, two 5-digit
		// ports; the zones must not make it longer.
		name:    "longest",
		src:     &net.TCPAddr{IP: net.ParseIP(ones), Zone: "eth0", Port: 65535},
		dst:     &net.TCPAddr{IP: net.ParseIP(ones), Zone: "eth0", Port: 65535},
		v6:      true,
		wantSrc: netip.MustParseAddrPort("[" + ones + "]:65535"),
		wantDst: netip.MustParseAddrPort("[" + ones + "]:65535"),
	}, {
		name:  "udp client",
		src:   &net.UDPAddr{IP: net.IP{192, 0, 2, 1}, Port: 53},
		dst:   tcpAddr("198.51.100.7:443"),
		local: true,
	}, {
		name:  "unix destination",
		src:   tcpAddr("192.0.2.1:56324"),
		dst:   &net.UnixAddr{Name: "/run/target.sock", Net: "unix"},
		local: true,
	}}
}

// checkV1Text fails t if a v1 header is too long or names a zone.
func checkV1Text(t *testing.T, h []byte) {
	t.Helper()
	if len(h) > proxyV1Max {
		t.Errorf("v1 header is %d bytes, over the %d allowed: %q", len(h), proxyV1Max, h)
	}
	if bytes.IndexByte(h, '%') >= 0 {
		t.Errorf("v1 header carries an IPv6 zone: %q", h)
	}
	if !bytes.HasSuffix(h, []byte("\r\n")) || bytes.Count(h, []byte("\n")) != 1 {
		t.Errorf("v1 header is not one CRLF-terminated line: %q", h)
	}
}

// parsedAddrs returns the source and destination of a parsed header as netip values,
// with the byte length the parser gave them (4 bytes for TCP4, 16 for TCP6).
func parsedAddrs(h *proxyproto.Header) (src, dst netip.AddrPort, err error) {
	s, d, ok := h.TCPAddrs()
	if !ok {
		return src, dst, fmt.Errorf("addresses are %T and %T, not TCP", h.SourceAddr, h.DestinationAddr)
	}
	return s.AddrPort(), d.AddrPort(), nil
}

// checkParsed fails t unless h is what a receiver must read for c. The comparison of
// netip values tells 192.0.2.1 from ::ffff:192.0.2.1.
func checkParsed(t *testing.T, what string, h *proxyproto.Header, c interopCase) {
	t.Helper()
	if c.local {
		if !h.Command.IsLocal() || h.TransportProtocol != proxyproto.UNSPEC {
			t.Errorf("%s: command %#x, family %#x; want LOCAL/UNKNOWN without addresses", what, h.Command, h.TransportProtocol)
		}
		return
	}
	want := proxyproto.TCPv4
	if c.v6 {
		want = proxyproto.TCPv6
	}
	if !h.Command.IsProxy() || h.TransportProtocol != want {
		t.Errorf("%s: command %#x, family %#x; want PROXY, family %#x", what, h.Command, h.TransportProtocol, want)
	}
	src, dst, err := parsedAddrs(h)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if src != c.wantSrc {
		t.Errorf("%s: source %v, want %v", what, src, c.wantSrc)
	}
	if dst != c.wantDst {
		t.Errorf("%s: destination %v, want %v", what, dst, c.wantDst)
	}
}

// TestProxyHeaderInterop parses every header we build with go-proxyproto, a receiver
// written apart from ours, and checks it reads back the client and destination.
func TestProxyHeaderInterop(t *testing.T) {
	payload := []byte("GET / HTTP/1.0\r\n\r\n")
	for _, v := range []ProxyVersion{ProxyV1, ProxyV2} {
		for _, c := range interopCases() {
			t.Run(fmt.Sprintf("v%d/%s", v, c.name), func(t *testing.T) {
				h := proxyHeader(v, c.src, c.dst)
				if v == ProxyV1 {
					checkV1Text(t, h)
				}
				br := bufio.NewReader(bytes.NewReader(append(append([]byte(nil), h...), payload...)))
				ph, err := proxyproto.Read(br)
				if err != nil {
					t.Fatalf("go-proxyproto refused %q (% x): %v", h, h, err)
				}
				if ph.Version != byte(v) {
					t.Errorf("parsed as version %d, want %d", ph.Version, v)
				}
				checkParsed(t, fmt.Sprintf("header %q", h), ph, c)
				// The parser must stop at the end of the header: what follows is
				// the client's data, byte for byte.
				if rest, _ := io.ReadAll(br); !bytes.Equal(rest, payload) {
					t.Errorf("after the header the parser left %q, want the payload %q", rest, payload)
				}
			})
		}
	}
}

// TestProxyHeaderInteropControl checks that go-proxyproto refuses what our headers must
// never carry, so that its accepting them above means something.
func TestProxyHeaderInteropControl(t *testing.T) {
	for _, h := range []string{
		"PROXY TCP6 fe80::1%eth0 fe80::2 1000 443\r\n",
		"PROXY TCP4 ::ffff:192.0.2.1 198.51.100.7 56324 443\r\n",
		"PROXY TCP6 " + strings.Repeat("0", 60) + " ::1 1 2\r\n",
	} {
		if ph, err := proxyproto.Read(bufio.NewReader(strings.NewReader(h))); err == nil {
			t.Errorf("go-proxyproto accepted %q as %+v; the checks above prove nothing", h, ph)
		}
	}
}

// startHAProxy runs haproxy in the foreground with a frontend that takes a PROXY header
// (accept-proxy) and a backend that sends its own v1 header (send-proxy) to target. It
// returns the frontend's address; haproxy is killed and reaped when t ends.
func startHAProxy(t *testing.T, bin string, target net.Addr) string {
	t.Helper()
	var last string
	for try := 0; try < 3; try++ {
		// Take a free port; another process may take it first, hence the tries.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fe := l.Addr().String()
		l.Close()
		cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
		text := fmt.Sprintf(`global
	log stderr format raw local0 info

defaults
	mode tcp
	log global
	option tcplog
	timeout connect 5s
	timeout client 5s
	timeout server 5s

frontend fe
	bind %s accept-proxy
	default_backend be

backend be
	server target %s send-proxy
`, fe, target)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		ok, out := runHAProxy(t, bin, cfg, fe)
		if ok {
			return fe
		}
		last = out
	}
	t.Fatalf("haproxy did not start; its last output:\n%s", last)
	return ""
}

// runHAProxy starts haproxy -f cfg and waits for it to accept on fe. On success the
// process belongs to t's cleanup; otherwise it is gone and its output returned.
func runHAProxy(t *testing.T, bin, cfg, fe string) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, bin, "-f", cfg, "-db")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 2 * time.Second
	// Should the test binary die, haproxy goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start haproxy: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() error {
		cancel()
		return <-done
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case err := <-done:
			cancel()
			return false, fmt.Sprintf("exited: %v\n%s", err, out.String())
		default:
		}
		// A bare connection with no header: haproxy logs it and drops it.
		if c, err := net.DialTimeout("tcp", fe, 200*time.Millisecond); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			err := stop()
			return false, fmt.Sprintf("no listener on %s after 5s (%v)\n%s", fe, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		// out is safe to read once Wait has returned.
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
	return true, ""
}

// errRefused reports that haproxy closed the client's connection without opening one to
// the backend: it did not take the header.
var errRefused = errors.New("haproxy closed the client connection without connecting to the backend")

// haproxyAccept waits for haproxy to open its connection to ln on behalf of client c, or
// to close c. Both are bounded by the deadlines set here. The returned function closes c
// and waits for the reader this starts; call it before the test ends.
func haproxyAccept(ln *net.TCPListener, c *net.TCPConn) (net.Conn, func(), error) {
	type accepted struct {
		conn net.Conn
		err  error
	}
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	acc := make(chan accepted, 1)
	go func() {
		a, err := ln.Accept()
		acc <- accepted{a, err}
	}()
	// haproxy sends the client nothing (the backend never writes), so a read on c
	// returns only when haproxy closes it.
	c.SetDeadline(time.Now().Add(10 * time.Second))
	closed := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := c.Read(b[:])
		closed <- err
	}()
	done := func() {
		c.Close()
		if closed != nil {
			<-closed
		}
	}
	select {
	case a := <-acc:
		if a.err != nil {
			return nil, done, fmt.Errorf("haproxy opened no connection to the backend: %v", a.err)
		}
		return a.conn, done, nil
	case err := <-closed:
		closed = nil
		// Unblock the accept; a connection that did arrive is closed.
		ln.SetDeadline(time.Now())
		if a := <-acc; a.conn != nil {
			a.conn.Close()
			return nil, done, fmt.Errorf("haproxy connected to the backend yet closed the client (%v)", err)
		}
		return nil, done, fmt.Errorf("%w (%v)", errRefused, err)
	}
}

// TestProxyHeaderHAProxy sends every header we build to HAProxy's accept-proxy and reads
// the v1 header HAProxy's send-proxy then gives the backend: it must name the client and
// destination of our header, and the client's data must follow byte for byte.
func TestProxyHeaderHAProxy(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not on PATH; skipping the check of our PROXY headers against its accept-proxy")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := l.(*net.TCPListener)
	t.Cleanup(func() { ln.Close() })
	fe := startHAProxy(t, bin, ln.Addr())

	payload := []byte("hello, target\n\x00\xff")
	// The control: a zoned address, which HAProxy must refuse. If it does not, or
	// the refusal goes unseen, nothing below proves anything.
	t.Run("control/zone refused", func(t *testing.T) {
		h := []byte("PROXY TCP6 fe80::1%lo fe80::2 1000 443\r\n")
		c := haproxyDial(t, fe, h, payload)
		a, done, err := haproxyAccept(ln, c)
		defer done()
		if a != nil {
			a.Close()
		}
		if !errors.Is(err, errRefused) {
			t.Fatalf("haproxy was sent %q: got %v, want it refused", h, err)
		}
	})
	for _, v := range []ProxyVersion{ProxyV1, ProxyV2} {
		for _, tc := range interopCases() {
			if _, ok := tc.dst.(*net.UnixAddr); ok {
				continue // the same header as "udp client"
			}
			t.Run(fmt.Sprintf("v%d/%s", v, tc.name), func(t *testing.T) {
				h := proxyHeader(v, tc.src, tc.dst)
				c := haproxyDial(t, fe, h, payload)
				a, done, err := haproxyAccept(ln, c)
				defer done()
				if err != nil {
					t.Fatalf("header %q (% x): %v", h, h, err)
				}
				defer a.Close()
				if tc.local {
					// No addresses in our header: HAProxy keeps those of
					// the connection itself and sends them, not UNKNOWN.
					tc.local, tc.v6 = false, false
					tc.wantSrc = c.LocalAddr().(*net.TCPAddr).AddrPort()
					tc.wantDst = c.RemoteAddr().(*net.TCPAddr).AddrPort()
				}
				a.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(a)
				line, err := br.ReadSlice('\n')
				if err != nil {
					t.Fatalf("header %q: reading haproxy's header: %v (got %q)", h, err, line)
				}
				ph, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(line)))
				if err != nil {
					t.Fatalf("header %q: haproxy sent %q, which does not parse: %v", h, line, err)
				}
				checkParsed(t, fmt.Sprintf("we sent %q, haproxy forwarded %q", h, line), ph, tc)
				data := make([]byte, len(payload))
				if _, err := io.ReadFull(br, data); err != nil || !bytes.Equal(data, payload) {
					t.Fatalf("payload: got %q (%v), want %q", data, err, payload)
				}
				// Nothing more may follow once the client is done.
				if err := c.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
					t.Errorf("after the payload: %q (%v), want end of stream", rest, err)
				}
			})
		}
	}
}

// haproxyDial connects to haproxy's frontend and sends header and payload in one write,
// as the relay does.
func haproxyDial(t *testing.T, fe string, header, payload []byte) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", fe, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tc := c.(*net.TCPConn)
	tc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.Write(append(append([]byte(nil), header...), payload...)); err != nil {
		tc.Close()
		t.Fatalf("write to haproxy: %v", err)
	}
	return tc
}
