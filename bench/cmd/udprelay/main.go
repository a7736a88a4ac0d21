// Command udprelay is the naive UDP relay that spliced --udp is compared with: one
// goroutine, one ReadFrom and one WriteTo per datagram from clients to the target, and a
// goroutine per client flow for the replies.
package main

import (
	"flag"
	"log"
	"net"
	"net/netip"
	"sync"
)

func main() {
	// The flags of gorelay, which the harness starts the same way.
	listen := flag.String("listen", "127.0.0.1:0", "address to receive datagrams on")
	to := flag.String("to", "", "target address")
	flag.Parse()
	target, err := netip.ParseAddrPort(*to)
	if err != nil {
		log.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	front := pc.(*net.UDPConn)
	var mu sync.Mutex
	flows := map[netip.AddrPort]*net.UDPConn{}
	buf := make([]byte, 65536)
	for {
		n, client, err := front.ReadFromUDPAddrPort(buf)
		if err != nil {
			log.Fatal(err)
		}
		mu.Lock()
		up := flows[client]
		if up == nil {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				mu.Unlock()
				continue
			}
			up = c
			flows[client] = up
			go reply(front, up, client)
		}
		mu.Unlock()
		_, _ = up.WriteToUDPAddrPort(buf[:n], target)
	}
}

// reply copies the target's datagrams back to the client, one ReadFrom and one WriteTo
// each.
func reply(front, up *net.UDPConn, client netip.AddrPort) {
	buf := make([]byte, 65536)
	for {
		n, _, err := up.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		_, _ = front.WriteToUDPAddrPort(buf[:n], client)
	}
}
