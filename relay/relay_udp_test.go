package relay

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// udpEcho answers every datagram with "echo:" and the datagram; it stops with t.
func udpEcho(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().String()
}

func TestUDPFlows(t *testing.T) {
	forModes(t, func(t *testing.T, m Mode) {
		if m == ModeKernel {
			t.Skip("kernel splicing is for TCP")
		}
		target := udpEcho(t)
		srv, addr := startServer(t, RelayConfig{Protocol: "udp", Targets: []string{target}, Mode: m, Idle: 300 * time.Millisecond})
		const clients, msgs = 3, 50
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("udp", addr)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				buf := make([]byte, 2000)
				for j := range msgs {
					msg := bytes.Repeat([]byte(fmt.Sprintf("%d.%d;", i, j)), 100)
					c.SetDeadline(time.Now().Add(5 * time.Second))
					c.Write(msg)
					n, err := c.Read(buf)
					if err != nil {
						errs <- fmt.Errorf("client %d message %d: %v", i, j, err)
						return
					}
					if !bytes.Equal(buf[:n], append([]byte("echo:"), msg...)) {
						errs <- fmt.Errorf("client %d got %q", i, buf[:min(n, 40)])
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		sn := srv.snap("test")
		if sn.accepted != clients {
			t.Errorf("%d flows for %d clients", sn.accepted, clients)
		}
		// Idle flows expire.
		waitFor(t, func() bool { return srv.ActiveFlows() == 0 })
		sn = srv.snap("test")
		if sn.endings[toTarget]["idle"] != clients || sn.bytes[toClient] != sn.bytes[toTarget]+5*clients*msgs {
			t.Errorf("after expiry: %+v", sn)
		}
	})
}

// TestUDPManyNewClientsAtOnce: clients whose first datagrams arrive together, while the
// relay is opening other clients' sockets, each get their own flow, and every reply
// carries only their own data. A new flow's socket is an unconnected member of the
// listener's SO_REUSEPORT group between its bind and its connect, so the kernel may
// queue another client's datagram on it; spliced as is, it would go to the target as
// the wrong client's.
func TestUDPManyNewClientsAtOnce(t *testing.T) {
	target := udpEcho(t)
	srv, addr := startServer(t, RelayConfig{Protocol: "udp", Targets: []string{target}})
	const clients, rounds = 200, 2
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := make(chan struct{})
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("udp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			<-start
			tag := fmt.Appendf(nil, "client %d", c)
			buf := make([]byte, 100)
			for r := range rounds {
				msg := fmt.Appendf(nil, "%s round %d", tag, r)
				// UDP: resend until the echo comes (loopback rarely drops).
				for try := 0; ; try++ {
					conn.Write(msg)
					conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
					n, err := conn.Read(buf)
					if err == nil {
						if !bytes.HasPrefix(buf[:n], append([]byte("echo:"), append(tag, ' ')...)) {
							errs <- fmt.Errorf("%s got %q: another client's datagram", tag, buf[:n])
							return
						}
						break
					}
					if try == 25 {
						errs <- fmt.Errorf("%s round %d: no echo in 5 s", tag, r)
						return
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := srv.allRecords()[0].stats.accepted.Load(); got != clients {
		t.Errorf("%d flows for %d clients", got, clients)
	}
}
