package mbuf

import (
	"io"
	"syscall"
	"unsafe"
)

// iovBatch is how many iovecs ReadFd and WriteFd pass to one readv or writev (IOV_MAX is
// 1024): 64 page clusters, 256 KiB, per call, from an array on the stack.
const iovBatch = 64

// ReadFd is m_uiotombuf(9) from a non-blocking file descriptor: it reads with one readv
// straight into fresh clusters holding at most max bytes — a packet-zone pair first, then
// page clusters, a 2 KiB one for a remainder of 2 KiB or less, an mbuf's own storage when
// max is at most MHLen; never a cluster more than max needs, and no more than 64 of them
// — and returns the chain (MPktHdr, MTData, Len == n), with the clusters the read did not
// reach already freed.
//
// Errors: with nothing to read, nil, 0 and syscall.EAGAIN; at end of file, nil, 0 and
// io.EOF; on any other error (or ENOBUFS from the allocation, which happens before the
// read, so no byte is lost), nil, 0 and the error. A max of 0 or less reads nothing and
// returns nil, 0, nil. It allocates nothing on the Go heap.
func ReadFd(fd int, max int, how How) (*Mbuf, int, error) {
	if max <= 0 {
		return nil, 0, nil
	}
	m, err := readChain(max, how)
	if err != nil {
		return nil, 0, err
	}
	var iov [iovBatch]syscall.Iovec
	cnt := 0
	for mm, rem := m, max; mm != nil && rem > 0; mm = mm.next {
		t := mm.Tail()
		t = t[:min(len(t), rem)]
		rem -= len(t)
		iov[cnt].Base = &t[0]
		iov[cnt].SetLen(len(t))
		cnt++
	}
	for {
		r, _, e := syscall.Syscall(syscall.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
		switch {
		case e == syscall.EINTR:
			continue
		case e != 0:
			m.FreeM()
			return nil, 0, e
		case r == 0:
			m.FreeM()
			return nil, 0, io.EOF
		}
		n := int(r)
		m.fillTo(n)
		return m, n, nil
	}
}

// readChain allocates the empty chain ReadFd and FromReader read into.
func readChain(max int, how How) (*Mbuf, error) {
	if max <= MHLen {
		return GetHdr(how, MTData)
	}
	m, err := GetCL(how, MTData, MPktHdr)
	if err != nil {
		return nil, err
	}
	tail := m
	for rem, cnt := max-MCLBytes, 1; rem > 0 && cnt < iovBatch; cnt++ {
		var n *Mbuf
		if rem > MCLBytes {
			n, err = getWithCluster(how, MTData, 0, extJumboP)
		} else {
			n, err = GetCL(how, MTData, 0)
		}
		if err != nil {
			m.FreeM()
			return nil, err
		}
		rem -= len(n.storage())
		tail.next = n
		tail = n
	}
	return m, nil
}

// fillTo accounts n bytes read into the empty chain from its head on, sets the header
// length, and frees the mbufs the bytes did not reach (the head always stays).
func (m *Mbuf) fillTo(n int) {
	m.hdr.Len = n
	for mm := m; ; mm = mm.next {
		k := min(n, mm.TrailingSpace())
		mm.len += int32(k)
		n -= k
		if n == 0 {
			mm.next.FreeM()
			mm.next = nil
			return
		}
	}
}

// WriteFd writes the chain's data windows to a non-blocking file descriptor with one
// writev (at most 64 windows; IOV_MAX is 1024) and returns the bytes written. It frees
// nothing: the caller drops what was written, as sbdrop does. With no room in the
// socket it returns 0 and syscall.EAGAIN. It allocates nothing on the Go heap.
func (m *Mbuf) WriteFd(fd int) (int, error) {
	debugCheck(m)
	var iov [iovBatch]syscall.Iovec
	cnt := 0
	for ; m != nil && cnt < iovBatch; m = m.next {
		if m.len > 0 {
			d := m.Data()
			iov[cnt].Base = &d[0]
			iov[cnt].SetLen(len(d))
			cnt++
		}
	}
	if cnt == 0 {
		return 0, nil
	}
	for {
		r, _, e := syscall.Syscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// FromReader is m_uiotombuf(9) from an io.Reader: it reads at most max bytes from r into
// a new chain laid out as ReadFd's, moving to the next cluster only while Read fills the
// one before (so a net.Conn is read once for what it has, a bytes.Reader to max or its
// end). It is not an io.ReaderFrom: it makes a chain rather than filling one, and it
// stops at max rather than at end of input. It returns the chain (MPktHdr, Len == n) and
// n; nil, 0 and io.EOF at end of input; and with any other error, what was read (perhaps
// nil) and the error. End of input after some bytes is not an error. The allocation
// happens before the first Read, so ENOBUFS (DontWait at the memory Limit) or ctx.Err()
// (Wait) comes back with nil and 0 and nothing read. A max of 0 or less reads nothing and
// returns nil, 0, nil.
func FromReader(r io.Reader, max int, how How) (*Mbuf, int, error) {
	if max <= 0 {
		return nil, 0, nil
	}
	m, err := readChain(max, how)
	if err != nil {
		return nil, 0, err
	}
	n := 0
	for mm := m; mm != nil && n < max; mm = mm.next {
		t := mm.Tail()
		t = t[:min(len(t), max-n)]
		k, rerr := r.Read(t)
		n += k
		if k < len(t) || rerr != nil {
			err = rerr
			break
		}
	}
	if n == 0 {
		m.FreeM()
		return nil, 0, err
	}
	m.fillTo(n)
	if err == io.EOF {
		err = nil
	}
	return m, n, err
}
