package relay

import "github.com/softnet-go/softnet/socket"

// minUDPSndBuf is the least send buffer a UDP socket gets, however small the configured
// size: a datagram larger than the drain's send sockbuf cannot be spliced (EMSGSIZE), and
// 64 KiB holds any datagram.
const minUDPSndBuf = 64 << 10

// setSockBuf sizes the buffers of a new socket, as soreserve() at socket creation: the
// receive buffer (SO_RCVBUF) to n and the send buffer (SO_SNDBUF) to n, or for UDP at
// least minUDPSndBuf. Socket.SetReadBuffer and SetWriteBuffer set the user-space
// sockbuf's high-water mark and the kernel socket's buffer alike. Setting SO_RCVBUF or
// SO_SNDBUF also turns Linux's autotuning of that buffer off (SOCK_RCVBUF_LOCK,
// SOCK_SNDBUF_LOCK), which is the point: a stalled flow then holds at most about twice
// n in each kernel buffer (the kernel doubles the size for its bookkeeping) instead of
// tcp_rmem's maximum. n = 0 leaves the socket alone.
func setSockBuf(so *socket.Socket, n int64, udp bool) error {
	if n <= 0 {
		return nil
	}
	snd := int(n)
	if udp {
		snd = max(snd, minUDPSndBuf)
	}
	if err := so.SetReadBuffer(int(n)); err != nil {
		return err
	}
	return so.SetWriteBuffer(snd)
}
