package socket_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/softnet-go/softnet/socket"
)

// A relay of a few bytes over loopback: a client talks to a server through a listener
// whose connections are spliced to the server and back.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The server upper-cases one line and closes.
	srv, _ := net.Listen("tcp", "127.0.0.1:0")
	defer srv.Close()
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		for i, x := range b {
			if 'a' <= x && x <= 'z' {
				b[i] = x - 'a' + 'A'
			}
		}
		c.Write(b)
	}()

	// The relay: accept, connect to the server on the same worker, splice both ways,
	// and pass each EOF on by shutting the other side down.
	ln, _ := socket.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		a, err := ln.Accept()
		if err != nil {
			return
		}
		b, err := (&socket.Dialer{Worker: a.Worker()}).DialContext(ctx, "tcp", srv.Addr().String())
		if err != nil {
			a.Close()
			return
		}
		a.Splice(b, socket.SpliceOptions{})
		b.Splice(a, socket.SpliceOptions{})
		a.WaitSplice(ctx) // the client's EOF
		b.CloseWrite()
		b.WaitSplice(ctx) // the server's
		fmt.Println("relayed", a.SpliceLen(), "and", b.SpliceLen(), "bytes")
		a.CloseWrite()
		a.Close()
		b.Close()
	}()

	c, _ := net.Dial("tcp", ln.Addr().String())
	c.Write([]byte("hello, splice"))
	c.(*net.TCPConn).CloseWrite()
	reply, _ := io.ReadAll(c)
	c.Close()
	fmt.Println(string(reply))
	time.Sleep(100 * time.Millisecond) // let the relay close its sockets
	// Output:
	// relayed 13 and 13 bytes
	// HELLO, SPLICE
}
