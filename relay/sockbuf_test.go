package relay

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
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

// TestSockBuf checks that every engine sizes the kernel buffers of the sockets it
// accepts, dials and takes over to the configured size, and leaves them to autotuning
// at 0. Linux keeps twice the size asked for (half for its bookkeeping).
func TestSockBuf(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("no ss(8)")
	}
	const n = 48 << 10 // no kernel default: the engine set it
	for _, mode := range testModes {
		t.Run(string(mode), func(t *testing.T) {
			var size atomic.Int64
			size.Store(n)
			eng, err := newEngine(mode, nil, &size)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := eng.listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			check := func(what, proto string, c net.Conn, wantRcv, wantSnd int, locked bool) {
				t.Helper()
				rb, tb := kernelBufs(t, proto, c.LocalAddr(), c.RemoteAddr())
				if locked && (rb != 2*wantRcv || tb != 2*wantSnd) {
					t.Errorf("%s: kernel buffers rb %d tb %d, want %d and %d", what, rb, tb, 2*wantRcv, 2*wantSnd)
				}
				if !locked && rb == 2*wantRcv && tb == 2*wantSnd {
					t.Errorf("%s: kernel buffers sized (rb %d tb %d) with sockbuf 0", what, rb, tb)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, locked := range []bool{true, false} {
				if !locked {
					size.Store(0)
				}
				d, err := eng.dial(ctx, "tcp", ln.Addr().String(), nil)
				if err != nil {
					t.Fatal(err)
				}
				a, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				check("dialled TCP", "tcp", d, n, n, locked)
				check("accepted TCP", "tcp", a, n, n, locked)
				d.Close()
				a.Close()
			}

			// UDP: a flow's client socket (fromConn) and its target socket (dial); the
			// send buffer keeps 64 KiB so that any datagram fits.
			size.Store(n)
			peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			uc, err := net.DialUDP("udp", nil, peer.LocalAddr().(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			local, remote := uc.LocalAddr(), uc.RemoteAddr()
			c, err := eng.fromConn(uc)
			if err != nil {
				uc.Close()
				t.Fatal(err)
			}
			defer c.Close()
			rb, tb := kernelBufs(t, "udp", local, remote)
			if rb != 2*n || tb != 2*minUDPSndBuf {
				t.Errorf("UDP flow socket: rb %d tb %d, want %d and %d", rb, tb, 2*n, 2*minUDPSndBuf)
			}
			ut, err := eng.dial(ctx, "udp", peer.LocalAddr().String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ut.Close()
			check("dialled UDP", "udp", ut, n, minUDPSndBuf, true)
		})
	}
}

// TestSetSockBufNotSettable checks that a connection that cannot be sized is an error,
// not a socket left unbounded in silence.
func TestSetSockBufNotSettable(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := setSockBuf(a, 64<<10, false); err == nil || !strings.Contains(err.Error(), "net.pipe") {
		t.Errorf("setSockBuf on a pipe: %v", err)
	}
	if err := setSockBuf(a, 0, false); err != nil {
		t.Errorf("setSockBuf 0 on a pipe: %v", err)
	}
}
