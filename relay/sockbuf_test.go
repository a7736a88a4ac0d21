package relay

import (
	"context"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kernelBufs returns the kernel's receive and send buffer sizes (skmem rb and tb) of the
// socket with local address local and peer remote, as ss(8) reports them from
// sock_diag; the sockets of package socket have no SyscallConn to ask directly.
func kernelBufs(t *testing.T, proto string, local, remote net.Addr) (rb, tb int) {
	t.Helper()
	flag := "-tmnH"
	if proto == "udp" {
		flag = "-umnH"
	}
	out, err := exec.Command("ss", flag, "state", "all", "src", local.String(), "dst", remote.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`skmem:\(r\d+,rb(\d+),t\d+,tb(\d+),`).FindAllStringSubmatch(string(out), -1)
	if len(m) != 1 {
		t.Fatalf("ss %s src %s dst %s: want one socket, got:\n%s", flag, local, remote, out)
	}
	rb, _ = strconv.Atoi(m[0][1])
	tb, _ = strconv.Atoi(m[0][2])
	return rb, tb
}

// TestSockBuf checks that a relay sizes the kernel buffers of the sockets it accepts,
// dials and takes over (UDP) to the configured size, and leaves them to autotuning at 0.
// Linux keeps twice the size asked for (half for its bookkeeping).
func TestSockBuf(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("no ss(8)")
	}
	const n = 48 << 10 // no kernel default: the relay set it
	check := func(what, proto string, local, remote net.Addr, wantRcv, wantSnd int, locked bool) {
		t.Helper()
		rb, tb := kernelBufs(t, proto, local, remote)
		if locked && (rb != 2*wantRcv || tb != 2*wantSnd) {
			t.Errorf("%s: kernel buffers rb %d tb %d, want %d and %d", what, rb, tb, 2*wantRcv, 2*wantSnd)
		}
		if !locked && rb == 2*wantRcv && tb == 2*wantSnd {
			t.Errorf("%s: kernel buffers sized (rb %d tb %d) with sockbuf 0", what, rb, tb)
		}
	}
	for _, mode := range testModes {
		t.Run(string(mode), func(t *testing.T) {
			conns := make(chan *net.TCPConn, 2)
			target := tcpServer(t, func(c *net.TCPConn) {
				conns <- c
				io.Copy(c, c)
			})
			for _, locked := range []bool{true, false} {
				size := int64(n)
				if !locked {
					size = 0
				}
				// A relay started with the size: its listener hands it to every client.
				srv := NewServer(ServerOptions{Log: testLogger(t), SockBuf: size})
				t.Cleanup(func() { srv.Shutdown(context.Background()) })
				if err := srv.Apply([]RelayConfig{{Name: "test", Listen: "127.0.0.1:0", Targets: []string{target}, Mode: mode}}); err != nil {
					t.Fatal(err)
				}
				addr := srv.Addr("test").String()
				c := dial(t, addr)
				c.Write([]byte("x"))
				if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
					t.Fatal(err)
				}
				tc := <-conns
				check("accepted TCP", "tcp", c.RemoteAddr(), c.LocalAddr(), n, n, locked)
				check("dialled TCP", "tcp", tc.RemoteAddr(), tc.LocalAddr(), n, n, locked)
				c.Close()
			}
		})
	}

	// A reload's new size reaches the clients a running relay accepts from then on.
	target := tcpServer(t, echo)
	srv, addr := startServer(t, RelayConfig{Targets: []string{target}})
	srv.SetSockBuf(n)
	c := dial(t, addr)
	c.Write([]byte("x"))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	check("accepted TCP after SetSockBuf", "tcp", c.RemoteAddr(), c.LocalAddr(), n, n, true)

	// UDP: a flow's client socket and its target socket; the send buffer keeps 64 KiB so
	// that any datagram fits.
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	srv, addr = startServer(t, RelayConfig{Protocol: "udp", Targets: []string{peer.LocalAddr().String()}})
	srv.SetSockBuf(n)
	uc, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	uc.Write([]byte("x"))
	buf := make([]byte, 16)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, from, err := peer.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return srv.ActiveFlows() == 1 })
	check("UDP flow socket", "udp", uc.RemoteAddr(), uc.LocalAddr(), n, minUDPSndBuf, true)
	check("dialled UDP", "udp", from, peer.LocalAddr(), n, minUDPSndBuf, true)
}

// TestKeepAliveBothSockets: by default both sockets of a TCP flow, the client's and the
// target's, have keepalive armed with DefaultKeepAlive (ss shows the timer); with Off,
// neither has.
func TestKeepAliveBothSockets(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("no ss(8)")
	}
	timer := func(local, remote net.Addr) string {
		out, err := exec.Command("ss", "-tonH", "state", "established", "src", local.String(), "dst", remote.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("ss: %v\n%s", err, out)
		}
		return string(out)
	}
	for _, ka := range []time.Duration{0, Off} {
		conns := make(chan *net.TCPConn, 1)
		target := tcpServer(t, func(c *net.TCPConn) {
			conns <- c
			io.Copy(c, c)
		})
		_, addr := startServer(t, RelayConfig{Name: "ka" + ka.String(), Targets: []string{target}, KeepAlive: ka})
		c := dial(t, addr)
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		tc := <-conns
		for _, s := range []struct{ what, out string }{
			{"client", timer(c.RemoteAddr(), c.LocalAddr())},
			{"target", timer(tc.RemoteAddr(), tc.LocalAddr())},
		} {
			armed := strings.Contains(s.out, "timer:(keepalive")
			if armed != (ka == 0) {
				t.Errorf("keepalive %v: the relay's %s socket: %q", ka, s.what, s.out)
			}
		}
		c.Close()
	}
}
