package main

import (
	"io"
	"net"
	"net/netip"
	"sync"
)

// A baseline is one of the relays built on package net alone that `spliced bench
// --mode iocopy|copy` measures beside spliced's own modes: the way Go programs relay
// when they do not splice. They are baselines for comparison, not relays to run: they
// have no limits, no idle timeout and no metrics.
type baseline struct {
	tcp   net.Listener
	udp   *net.UDPConn
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[io.Closer]bool
}

// startBaseline starts a baseline relay in mode "iocopy" (io.Copy each way: splice(2)
// between TCP sockets inside package net) or "copy" (a goroutine per direction copying
// through a 32 KiB buffer; 64 KiB for datagrams) from a loopback port to target.
func startBaseline(mode string, udp bool, target string) (*baseline, error) {
	b := &baseline{conns: map[io.Closer]bool{}}
	if udp {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		b.udp = c
		b.wg.Add(1)
		go b.serveUDP(target)
		return b, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b.tcp = ln
	b.wg.Add(1)
	go b.serveTCP(mode, target)
	return b, nil
}

// addr returns the address the baseline listens on.
func (b *baseline) addr() net.Addr {
	if b.udp != nil {
		return b.udp.LocalAddr()
	}
	return b.tcp.Addr()
}

// track remembers c for close; it returns false once the baseline is closed.
func (b *baseline) track(c io.Closer) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns == nil {
		return false
	}
	b.conns[c] = true
	return true
}

// close stops the baseline and closes every connection, then waits for its goroutines.
func (b *baseline) close() {
	b.mu.Lock()
	conns := b.conns
	b.conns = nil
	b.mu.Unlock()
	if b.tcp != nil {
		b.tcp.Close()
	}
	if b.udp != nil {
		b.udp.Close()
	}
	for c := range conns {
		c.Close()
	}
	b.wg.Wait()
}

func (b *baseline) serveTCP(mode, target string) {
	defer b.wg.Done()
	for {
		c, err := b.tcp.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			t, err := net.Dial("tcp", target)
			if err != nil || !b.track(c) || !b.track(t) {
				c.Close()
				if t != nil {
					t.Close()
				}
				return
			}
			var dirs sync.WaitGroup
			dirs.Add(2)
			go func() { defer dirs.Done(); copyTCP(mode, t.(*net.TCPConn), c.(*net.TCPConn)) }()
			go func() { defer dirs.Done(); copyTCP(mode, c.(*net.TCPConn), t.(*net.TCPConn)) }()
			dirs.Wait()
			c.Close()
			t.Close()
		}()
	}
}

// copyTCP moves src to dst until EOF and passes the EOF on.
func copyTCP(mode string, dst, src *net.TCPConn) {
	if mode == "iocopy" {
		io.Copy(dst, src) // dst.ReadFrom(src): splice(2)
	} else {
		io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 32<<10))
	}
	dst.CloseWrite()
}

// serveUDP relays datagrams: a connected socket to the target per client address, with
// a goroutine reading the target's answers back to the client.
func (b *baseline) serveUDP(target string) {
	defer b.wg.Done()
	flows := map[netip.AddrPort]*net.UDPConn{}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := b.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		t := flows[from]
		if t == nil {
			c, err := net.Dial("udp", target)
			if err != nil || !b.track(c) {
				if c != nil {
					c.Close()
				}
				continue
			}
			t = c.(*net.UDPConn)
			flows[from] = t
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				back := make([]byte, 64<<10)
				for {
					n, err := t.Read(back)
					if err != nil {
						return
					}
					b.udp.WriteToUDPAddrPort(back[:n], from)
				}
			}()
		}
		t.Write(buf[:n])
	}
}
