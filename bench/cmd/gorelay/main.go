// Command gorelay is the plain Go TCP relay that the comparison harness measures spliced
// against: it accepts on -listen, dials -to for each client, and copies each direction in
// a goroutine of its own, passing a half-close on (CloseWrite once a direction reaches
// EOF) and closing both sockets once both directions have ended. Nothing else: no
// timeouts, no limits, no logging beyond errors at start.
//
//	-mode iocopy  io.Copy between the *net.TCPConns, which Go turns into splice(2)
//	              through a pipe per direction (the io.Copy relay a Go user writes)
//	-mode copy    a Read/Write loop through a 32 KiB buffer per direction
//
//	go run ./cmd/gorelay -listen 127.0.0.1:9000 -to 127.0.0.1:9001 -mode iocopy
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to accept clients on")
	to := flag.String("to", "", "target address (host:port)")
	mode := flag.String("mode", "iocopy", "iocopy (io.Copy, splice(2)) or copy (32 KiB buffer per direction)")
	flag.Parse()
	if *to == "" || (*mode != "iocopy" && *mode != "copy") {
		flag.Usage()
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			// EMFILE and the like: the client's connection is lost, the relay goes on.
			log.Printf("accept: %v", err)
			continue
		}
		go relay(c.(*net.TCPConn), *to, *mode)
	}
}

func relay(client *net.TCPConn, to, mode string) {
	t, err := net.Dial("tcp", to)
	if err != nil {
		client.Close()
		return
	}
	target := t.(*net.TCPConn)
	done := make(chan struct{}, 2)
	go pipe(target, client, mode, done)
	go pipe(client, target, mode, done)
	<-done
	<-done
	client.Close()
	target.Close()
}

// pipe copies src to dst until src's EOF or an error, then half-closes dst.
func pipe(dst, src *net.TCPConn, mode string, done chan<- struct{}) {
	if mode == "iocopy" {
		_, _ = io.Copy(dst, src)
	} else {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
	}
	_ = dst.CloseWrite()
	done <- struct{}{}
}
