package socket

import (
	"sync"

	"github.com/softnet-go/softnet/mbuf"
)

// sockbuf flags (sb_flags and sb_state in BSD), guarded by the sockbuf's mu.
const (
	sbCantMore    = 1 << iota // SBS_CANTRCVMORE on rcv, SBS_CANTSENDMORE on snd
	sbSplice                  // SB_SPLICE: a running splice drains rcv / fills snd
	sbBusy                    // the worker or an application call is in a read (rcv) or write (snd) system call
	sbStalled                 // rcv: input stopped because the buffer was full
	sbClosed                  // the socket was closed: waiters return net.ErrClosed
	sbShutPending             // snd: CloseWrite is waiting for the buffer to drain
	sbWantIO                  // a reader waits for the kernel: the worker wakes it rather than reading
	sbSendfile                // snd: SendFile owns the kernel socket's send side (with sbBusy)
	sbRdHup                   // rcv: epoll saw the peer's FIN: read on until EOF, short reads or not
	sbNoGSO                   // snd (UDP): the path refused a GSO message (EMSGSIZE): send datagrams singly
	sbSized                   // SetReadBuffer/SetWriteBuffer fixed the kernel's SO_RCVBUF/SO_SNDBUF (no autotuning)
)

// A sockbuf is BSD's struct sockbuf: a queue of mbuf chains with a high-water mark
// (hiwat), a low-water mark (lowat) and byte (cc) and storage (mbcnt) accounting. A
// stream socket's sockbuf is one chain linked by Next; a datagram socket's is a queue of
// records (one packet each, a pkthdr chain) linked by NextPkt. Each socket has two, with
// separate locks: the receive buffer (filled by the worker's input, drained by readers or
// the splice) and the send buffer (filled by writers or the splice, drained by the
// worker's output).
type sockbuf struct {
	mu    sync.Mutex
	mb    *mbuf.Mbuf // sb_mb: the first mbuf of the first record
	last  *mbuf.Mbuf // sb_lastrecord: the first mbuf of the last record
	tail  *mbuf.Mbuf // sb_mbtail: the last mbuf of the last record
	cc    int        // sb_datacc: bytes of data (sender addresses not counted)
	mbcnt int        // sb_mbcnt: bytes of storage (mbufs and clusters) held
	hiwat int        // sb_hiwat
	lowat int        // sb_lowat
	mbmax int        // sb_mbmax: the limit of mbcnt
	flags uint32

	waiters int           // goroutines blocked in sbwait
	waitc   chan struct{} // closed by sbwakeup; made by the first waiter
}

// reserve is sbreserve(): it sets the high-water mark and the storage limit.
func (sb *sockbuf) reserve(hiwat, lowat int) {
	sb.hiwat = hiwat
	sb.mbmax = max(2*hiwat, hiwat+64<<10)
	sb.lowat = min(lowat, hiwat)
}

// space is sbspace(): the smaller of the free bytes and the free storage.
func (sb *sockbuf) space() int {
	return min(sb.hiwat-sb.cc, sb.mbmax-sb.mbcnt)
}

// msize is the storage sballoc counts for an mbuf: its MSIZE and its data bytes. (BSD
// counts the whole cluster; package mbuf has no accessor for a cluster's size, and a
// count that changes when a sharer frees its mbuf could not be undone exactly.)
func msize(m *mbuf.Mbuf) int {
	return mbuf.MSize + m.Len()
}

// account adds (or with sign -1 removes) the bytes and storage of one mbuf: sballoc and
// sbfree.
func (sb *sockbuf) account(m *mbuf.Mbuf, sign int) {
	if m.Type() != mbuf.MTSoname { // sb_datacc: addresses are not data
		sb.cc += sign * m.Len()
	}
	sb.mbcnt += sign * msize(m)
}

// appendStream is sbappendstream(): it links chain m behind the buffer's one record.
func (sb *sockbuf) appendStream(m *mbuf.Mbuf) {
	if m == nil {
		return
	}
	if sb.tail == nil {
		sb.mb, sb.last = m, m
	} else {
		sb.tail.Link(m)
	}
	for ; m != nil; m = m.Next() {
		sb.account(m, 1)
		sb.tail = m
	}
}

// appendRecord is sbappendrecord(): it queues chain m as a new record (a datagram).
func (sb *sockbuf) appendRecord(m *mbuf.Mbuf) {
	if m == nil {
		return
	}
	if sb.last == nil {
		sb.mb = m
	} else {
		sb.last.LinkPkt(m)
	}
	sb.last = m
	for ; m != nil; m = m.Next() {
		sb.account(m, 1)
		sb.tail = m
	}
}

// dropStream is sbdrop() for a stream buffer: it frees the first n bytes.
func (sb *sockbuf) dropStream(n int) {
	for n > 0 && sb.mb != nil {
		m := sb.mb
		if l := m.Len(); l > n {
			sb.cc -= n
			sb.mbcnt -= n
			m.Adj(n)
			return
		}
		n -= m.Len()
		sb.unlinkHead()
		m.Free()
	}
	sb.trim()
}

// unlinkHead takes the first mbuf of a stream buffer off the chain and out of the
// accounting, without freeing it.
func (sb *sockbuf) unlinkHead() *mbuf.Mbuf {
	m := sb.mb
	sb.account(m, -1)
	sb.mb = m.Next()
	m.Unlink()
	if sb.mb == nil {
		sb.last, sb.tail = nil, nil
	} else {
		sb.last = sb.mb
	}
	return m
}

// trim frees empty mbufs at the head of a stream buffer (they hold storage, not data).
func (sb *sockbuf) trim() {
	for sb.mb != nil && sb.mb.Len() == 0 && sb.mb != sb.tail {
		sb.unlinkHead().Free()
	}
	if sb.mb != nil && sb.mb.Len() == 0 && sb.cc == 0 {
		sb.unlinkHead().Free()
	}
}

// takeStream unlinks and returns up to n bytes from the head of a stream buffer as a
// chain (all of it if n >= cc), splitting the mbuf that straddles n. A split that finds
// no memory ends the chain before that mbuf: nil if it was the first.
func (sb *sockbuf) takeStream(n int) *mbuf.Mbuf {
	m, _ := sb.take(n, true)
	return m
}

// take unlinks up to n bytes from the head of a stream buffer as a chain and returns it
// with its length: whole mbufs, and the mbuf that straddles n split (m_split) if split is
// set, else left for later. A split that finds no memory ends the chain there too.
func (sb *sockbuf) take(n int, split bool) (*mbuf.Mbuf, int) {
	var head, tail *mbuf.Mbuf
	k := 0
	for k < n && sb.mb != nil {
		m := sb.mb
		if m.Len() > n-k {
			if !split {
				break
			}
			sb.account(m, -1)
			rest, err := m.Split(n-k, mbuf.DontWait)
			if err != nil {
				sb.account(m, 1)
				break
			}
			sb.mb = rest
			if sb.tail == m {
				sb.tail = rest
			}
			sb.last = rest
			sb.account(rest, 1)
			m.Unlink()
		} else {
			sb.unlinkHead()
		}
		k += m.Len()
		if head == nil {
			head = m
		} else {
			tail.Link(m)
		}
		tail = m
	}
	return head, k
}

// takeRecord unlinks and returns the first record of a datagram buffer: sbdroprecord
// without the free.
func (sb *sockbuf) takeRecord() *mbuf.Mbuf {
	m := sb.mb
	if m == nil {
		return nil
	}
	sb.mb = m.NextPkt()
	m.UnlinkPkt()
	if sb.mb == nil {
		sb.last, sb.tail = nil, nil
	}
	for n := m; n != nil; n = n.Next() {
		sb.account(n, -1)
	}
	return m
}

// flush is sbflush(): it frees everything.
func (sb *sockbuf) flush() {
	for m := sb.mb; m != nil; {
		next := m.NextPkt()
		m.UnlinkPkt()
		m.FreeM()
		m = next
	}
	sb.mb, sb.last, sb.tail = nil, nil, nil
	sb.cc, sb.mbcnt = 0, 0
}

// wakeup is sbwakeup(): it wakes every goroutine waiting in wait. sb.mu is held.
func (sb *sockbuf) wakeup() {
	if sb.waitc != nil {
		close(sb.waitc)
		sb.waitc = nil
	}
}

// wait is sbwait(): it releases sb.mu, waits for a wakeup or for dl to pass, and takes
// sb.mu again. The caller re-checks its condition and the deadline.
func (sb *sockbuf) wait(dl *deadline) {
	sb.waitUntil(dl.channel())
}

// waitUntil is sbwait until a wakeup or until done is closed (a context's, a
// deadline's; nil: never): it releases sb.mu, waits, and takes sb.mu again. It reports
// whether a wakeup came rather than done.
func (sb *sockbuf) waitUntil(done <-chan struct{}) bool {
	if sb.waitc == nil {
		sb.waitc = make(chan struct{})
	}
	c := sb.waitc
	sb.waiters++
	sb.mu.Unlock()
	woken := true
	select {
	case <-c:
	case <-done:
		woken = false
	}
	sb.mu.Lock()
	sb.waiters--
	return woken
}
