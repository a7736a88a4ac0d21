package socket_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"
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

// A UDP socket where a net.PacketConn is wanted: PacketConn gives ReadFrom and WriteTo
// with net.Addr addresses.
func ExampleSocket_PacketConn() {
	a, _ := socket.ListenPacket("udp", "127.0.0.1:0")
	defer a.Close()
	b, _ := socket.ListenPacket("udp", "127.0.0.1:0")
	defer b.Close()

	var pa, pb net.PacketConn = a.PacketConn(), b.PacketConn()
	pa.WriteTo([]byte("ping"), pb.LocalAddr())
	buf := make([]byte, 64)
	pb.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, _ := pb.ReadFrom(buf)
	fmt.Println(string(buf[:n]), from.String() == pa.LocalAddr().String())
	// Output: ping true
}

// A Listener where a net.Listener is wanted (net/http's Serve, say): NetListener's
// Accept returns each connection's *Socket as a net.Conn.
func ExampleListener_NetListener() {
	ln, _ := socket.Listen("tcp", "127.0.0.1:0")
	var l net.Listener = ln.NetListener()
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c) // ReadFrom a Socket: a splice, an echo
		c.Close()
	}()

	c, _ := net.Dial("tcp", l.Addr().String())
	c.Write([]byte("echo"))
	c.(*net.TCPConn).CloseWrite()
	reply, _ := io.ReadAll(c)
	c.Close()
	fmt.Println(string(reply))
	// Output: echo
}

// io.Copy between two Sockets is a splice (Socket.ReadFrom): the bytes move from one
// socket's receive side to the other's send side without a buffer of the caller's, and
// the source's SpliceLen counts them.
func ExampleSocket_ReadFrom() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, _ := socket.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	src, _ := socket.Dial(ctx, "tcp", ln.Addr().String())
	defer src.Close()
	peer, _ := ln.Accept()
	defer peer.Close()
	dst, _ := socket.Dial(ctx, "tcp", ln.Addr().String())
	defer dst.Close()
	sink, _ := ln.Accept()
	defer sink.Close()

	go func() {
		peer.Write([]byte("spliced, not copied"))
		peer.CloseWrite()
	}()
	n, err := io.Copy(dst, src) // until src's EOF
	dst.CloseWrite()
	got, _ := io.ReadAll(sink)
	fmt.Println(n, err, src.SpliceLen(), string(got))
	// Output: 19 <nil> 19 spliced, not copied
}

// SyscallConn gives the kernel socket's descriptor for options the package does not
// set, and reads and writes of one's own that wait on the socket's worker.
func ExampleSocket_SyscallConn() {
	ln, _ := socket.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	c, _ := socket.Dial(context.Background(), "tcp", ln.Addr().String())
	defer c.Close()

	rc, _ := c.SyscallConn()
	var nodelay int
	rc.Control(func(fd uintptr) {
		nodelay, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	})
	fmt.Println("TCP_NODELAY", nodelay)
	// Output: TCP_NODELAY 1
}
