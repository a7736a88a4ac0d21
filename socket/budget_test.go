package socket_test

import (
	"fmt"
	"io"
	"net"

	"github.com/softnet-go/softnet/socket"
)

// A relay whose sockets have 256 KiB kernel buffers lends bulk flows 4 MiB buffers from a
// budget of 64 MiB, and has every byte back once they end.
func ExampleBufferBudget() {
	budget := socket.NewBufferBudget(64<<20, 0)

	server, _ := net.Listen("tcp", "127.0.0.1:0")
	defer server.Close()
	ln, _ := socket.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	done := make(chan int64)
	go func() { // the server counts what reaches it
		c, _ := server.Accept()
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		done <- n
	}()
	go func() { // a client sends 8 MiB
		c, _ := net.Dial("tcp", ln.Addr().String())
		c.Write(make([]byte, 8<<20))
		c.Close()
	}()

	src, _ := ln.Accept()
	dst, _ := (&socket.Dialer{Worker: src.Worker()}).Connect("tcp", server.Addr().String())
	for _, s := range []*socket.Socket{src, dst} {
		s.SetReadBuffer(256 << 10)
		s.SetWriteBuffer(256 << 10)
	}
	ended := make(chan error, 1)
	src.Splice(dst, socket.SpliceOptions{
		Mode:   socket.SpliceAuto,
		Budget: budget,
		OnEnd:  func(err error) { dst.CloseWrite(); ended <- err },
	})
	fmt.Println("splice ended:", <-ended)
	fmt.Println("server got:", <-done>>20, "MiB")
	src.Close()
	dst.Close()
	fmt.Println("budget used after the end:", budget.Used())
	// Output:
	// splice ended: <nil>
	// server got: 8 MiB
	// budget used after the end: 0
}
