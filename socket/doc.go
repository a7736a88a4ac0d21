// Package socket is user-space sockets over non-blocking TCP and UDP sockets of the
// kernel, with BSD sockbufs of mbuf chains and OpenBSD's socket splicing (SO_SPLICE).
//
// # Sockets
//
// A Socket has a receive and a send sockbuf (mbuf chains with a high-water and a
// low-water mark and byte and storage accounting), each with its own lock, and belongs
// for life to one netq worker, whose epoll loop reads the kernel socket into clusters of
// the packet zone (readv, recvmmsg), writes the send sockbuf out (writev, sendmmsg), and
// runs the splice task. The API is shaped like package net:
//
//	ln, _ := socket.Listen("tcp", ":8080")       // one SO_REUSEPORT socket per worker
//	so, _ := ln.Accept()                         // stays on the worker that accepted it
//	c, _ := socket.Dial(ctx, "tcp", "host:80")   // a non-blocking connect the worker completes
//	u, _ := socket.ListenPacket("udp", ":5353")  // bound, unconnected UDP
//	s, _ := socket.FromConn(tcpConn)              // takes over a net.Conn's descriptor
//
// A *Socket is a net.Conn (deadlines included; UDP: one datagram per Read and Write,
// empty datagrams allowed), with CloseWrite, SetReadBuffer and SetWriteBuffer (the
// sockbuf's high-water mark, passed on to the kernel socket too), Recv and Send of mbuf
// chains without copying, and SendFile (a header chain, then sendfile(2), corked).
// Read and Write go straight to the kernel socket when the sockbuf is empty, so a
// streaming application pays one copy, as with package net; the sockbufs hold data the
// worker read ahead, chains sent with Send, and spliced data. No application call holds
// a sockbuf's lock across a system call or a long copy, so a Read or Write, however
// large, never makes the worker (and the other flows it serves) wait; concurrent Reads,
// and concurrent Writes, of one socket are serialized, as BSD's sblock serializes them.
//
// For code written against package net and io: a *Socket is also an io.ReaderFrom and
// an io.WriterTo (io.Copy between two TCP Sockets is a splice; from a regular file,
// SendFile) and a syscall.Conn whose RawConn waits on the worker; PacketConn returns a
// UDP socket as a net.PacketConn (a type cannot have both io.ReaderFrom's and
// net.PacketConn's ReadFrom, so package net's split is kept: the Socket has the first),
// and Listener.NetListener returns a Listener as a net.Listener.
//
// Sockets made without naming a netq.Group run on netq.Default(); ListenConfig, Dialer
// and FromConnOn choose a group or a worker. No goroutine is made per socket, and an idle
// socket holds no buffer. At the mbuf memory Limit input waits for memory (woken by uma)
// rather than spinning or dropping accepted bytes.
//
// # Splicing
//
// src.Splice(dst, opt) moves what src receives to dst's send side on src's worker,
// following OpenBSD's SO_SPLICE exactly (sosplice, somove, sounsplice, soidle): a
// maximum (EFBIG when exactly reached, the rest stays readable), an idle timeout
// (ETIMEDOUT), EOF (no error, not passed on), the drain's failure (EPIPE or its error),
// EMSGSIZE for a UDP datagram larger than the drain's send buffer. WaitSplice (or
// SpliceOptions.OnEnd) reports the end; SpliceLen counts the bytes. SpliceUser moves
// mbufs between sockbufs without copying; SpliceKernel (TCP) moves the bytes inside the
// kernel with splice(2) through a pipe taken from a pool only while bytes are in it.
// A relay splices both directions and shuts each drain down when its source reaches EOF:
//
//	b, _ := (&socket.Dialer{Worker: a.Worker()}).Connect("tcp", target)
//	a.Splice(b, socket.SpliceOptions{Idle: time.Minute, OnEnd: func(error) { b.CloseWrite() }})
//	b.Splice(a, socket.SpliceOptions{Idle: time.Minute, OnEnd: func(error) { a.CloseWrite() }})
//
// SpliceAuto, the default, starts a TCP splice on the user path, where a small request
// costs one readv and one writev, and moves it to the kernel path once it proves to be
// bulk (input reads that fill the budget three times in a row, as HAProxy's splice-auto
// decides), and back when it goes quiet; a BufferBudget (SpliceOptions.Budget) lends
// such flows larger kernel buffers while they stream. A splice that moved little in its
// last turn is queued on its worker's sparse queue (netq.Worker.AddSparse), ahead of
// the bulk passes of the same loop iteration.
//
// # Flows set up on their worker
//
// A relay sets each flow up where its packets arrive, with nothing blocking: with
// ListenConfig.OnAccept the worker that accepted a connection hands it over there,
// Dialer.ConnectFunc starts the target's connect on the same worker and calls back there
// when it is up or has failed, and a netq.Timer of that worker bounds the attempt (close
// the socket to give up). See the example of ListenConfig's OnAccept.
//
// ELOOP is not emulated: loops through the kernel's sockets cannot be seen from user
// space. Urgent (out-of-band) TCP data is not handled.
package socket
