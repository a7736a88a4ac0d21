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

// writeScratch is a pooled net.Buffers, so that WriteTo allocates nothing in steady
// state: net.Buffers.WriteTo needs a pointer, which would otherwise escape per call.
type writeScratch struct {
	bufs net.Buffers // consumed by WriteTo
	all  net.Buffers // the same windows, to clear afterwards
}

var writePool = sync.Pool{New: func() any { return &writeScratch{all: make(net.Buffers, 0, 64)} }}

// WriteTo implements io.WriterTo: it writes the whole chain to w with net.Buffers, which
// is one writev per call for a *net.TCPConn, *net.UnixConn and the like (and a Write per
// window for other writers), until every byte is written or an error. It frees nothing:
// the caller drops what was written (Adj, Split). For a raw non-blocking fd use WriteFd.
func (m *Mbuf) WriteTo(w io.Writer) (int64, error) {
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
