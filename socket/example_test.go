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

// A relay that sets each flow up on the worker that accepted it: OnAccept connects to
// the server with ConnectFunc on the same worker and splices both ways once the connect
// is up, and OnEnd passes each EOF on — no goroutine per connection.
func ExampleListenConfig_onAccept() {
	// The server echoes what it reads and closes.
	srv, _ := net.Listen("tcp", "127.0.0.1:0")
	defer srv.Close()
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()

	done := make(chan string, 1)
	lc := socket.ListenConfig{OnAccept: func(client *socket.Socket) {
		// On the worker: start the connect and return.
		d := socket.Dialer{Worker: client.Worker()}
		var server *socket.Socket
		var err error
		server, err = d.ConnectFunc("tcp", srv.Addr().(*net.TCPAddr).AddrPort(), func(err error) {
			// On the same worker, once the connect is over.
			if err != nil {
				client.Close()
				server.Close()
				return
			}
			ends := 0
			end := func(dst *socket.Socket) func(error) {
				return func(error) {
					dst.CloseWrite() // pass the EOF on
					if ends++; ends == 2 {
						done <- fmt.Sprint("relayed ", client.SpliceLen(), " and ", server.SpliceLen(), " bytes")
						client.Close()
						server.Close()
					}
				}
			}
			client.Splice(server, socket.SpliceOptions{OnEnd: end(server)})
			server.Splice(client, socket.SpliceOptions{OnEnd: end(client)})
		})
		if err != nil {
			client.Close()
		}
	}}
	ln, _ := lc.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()

	c, _ := net.Dial("tcp", ln.Addr().String())
	c.Write([]byte("hello, worker"))
	c.(*net.TCPConn).CloseWrite()
	reply, _ := io.ReadAll(c)
	c.Close()
	fmt.Println(string(reply))
	fmt.Println(<-done)
	// Output:
	// hello, worker
	// relayed 13 and 13 bytes
}
