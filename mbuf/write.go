package mbuf

import (
	"io"
	"net"
	"sync"
)

// AppendBuffers appends the chain's non-empty data windows to dst and returns it: the
// iovecs of a writev, or a net.Buffers. It allocates nothing when dst has room. The
// slices alias the mbufs and are valid while they are.
func (m *Mbuf) AppendBuffers(dst [][]byte) [][]byte {
	for ; m != nil; m = m.next {
		if m.len > 0 {
			dst = append(dst, m.Data())
		}
	}
	return dst
}

// writeScratch is a pooled net.Buffers, so that WriteAll allocates nothing in steady
// state: net.Buffers.WriteTo needs a pointer, which would otherwise escape per call.
type writeScratch struct {
	bufs net.Buffers // consumed by net.Buffers.WriteTo
	all  net.Buffers // the same windows, to clear afterwards
}

var writePool = sync.Pool{New: func() any { return &writeScratch{all: make(net.Buffers, 0, 64)} }}

// WriteAll is m_mbuftouio(9) to an io.Writer: it writes the whole chain to w with
// net.Buffers, which is one writev per call for a *net.TCPConn, *net.UnixConn and the
// like (and a Write per window for other writers), until every byte is written or an
// error, and returns the bytes written. Unlike an io.WriterTo (bytes.Buffer's, say), it
// consumes nothing: the chain is left whole, and the caller drops what was written (Adj,
// Split, FreeM), as sbdrop(9) does for a send buffer. A short write comes back with its
// error, the chain unchanged. For a raw non-blocking fd use WriteFd.
func (m *Mbuf) WriteAll(w io.Writer) (int64, error) {
	debugCheck(m)
	s := writePool.Get().(*writeScratch)
	s.all = m.AppendBuffers(s.all[:0])
	s.bufs = s.all
	n, err := s.bufs.WriteTo(w)
	clear(s.all) // do not keep the mbufs' memory reachable from the pool
	s.all, s.bufs = s.all[:0], nil
	writePool.Put(s)
	return n, err
}
