package mbuf

import (
	"fmt"
	"iter"
	"sync"
	"syscall"
)

// A List is OpenBSD's struct mbuf_list (FreeBSD's struct mbufq without its limit): a
// queue of packets linked by NextPkt, with its head, its tail and its length, so that
// Enqueue and Dequeue take constant time. The zero value is an empty list (ml_init).
//
// A List owns the packets on it: Purge frees them, Dequeue and Dechain hand them back. A
// packet is on at most one List at a time. A List is not safe for concurrent use; Queue
// is a List behind a mutex.
type List struct {
	head, tail *Mbuf
	n          int
}

// Enqueue is ml_enqueue(9): it appends packet m at the tail. m must be a single packet:
// it panics if m is nil or m.NextPkt() is not nil (OpenBSD clears m_nextpkt, which would
// lose the packets behind it; Enlist moves a List of them). It cannot fail.
func (l *List) Enqueue(m *Mbuf) {
	debugCheck(m)
	if m.nextpkt != nil {
		panic("mbuf: Enqueue of a packet linked to others")
	}
	if l.tail == nil {
		l.head = m
	} else {
		l.tail.nextpkt = m
	}
	l.tail = m
	l.n++
}

// Enlist is ml_enlist(9): it moves every packet of o to the tail of l, in order, and
// leaves o empty. It cannot fail.
func (l *List) Enlist(o *List) {
	if o.head == nil {
		return
	}
	if l.tail == nil {
		l.head = o.head
	} else {
		l.tail.nextpkt = o.head
	}
	l.tail = o.tail
	l.n += o.n
	*o = List{}
}

// Dequeue is ml_dequeue(9): it takes the packet at the head off the list and returns it,
// its NextPkt cleared; nil when the list is empty.
func (l *List) Dequeue() *Mbuf {
	m := l.head
	if m == nil {
		return nil
	}
	l.head = m.nextpkt
	if l.head == nil {
		l.tail = nil
	}
	m.nextpkt = nil
	l.n--
	return m
}

// Dechain is ml_dechain(9): it empties the list and returns its packets still linked by
// NextPkt (nil if there were none), for the caller to walk with UnlinkPkt or free with
// FreeMP.
func (l *List) Dechain() *Mbuf {
	m := l.head
	*l = List{}
	return m
}

// Purge is ml_purge(9): it frees every packet (FreeMP), empties the list and returns how
// many packets there were.
func (l *List) Purge() int {
	n := l.n
	l.Dechain().FreeMP()
	return n
}

// Len is ml_len(9): the number of packets on the list.
func (l *List) Len() int { return l.n }

// Empty is ml_empty(9): whether the list holds no packet.
func (l *List) Empty() bool { return l.head == nil }

// First is MBUF_LIST_FIRST: the packet at the head, left on the list; nil when empty.
func (l *List) First() *Mbuf { return l.head }

// HDataLen is ml_hdatalen(9): the packet header length of the packet at the head, 0 when
// the list is empty. It panics if that packet has no header (OpenBSD asserts one).
func (l *List) HDataLen() int {
	if l.head == nil {
		return 0
	}
	return l.head.mustHdr("HDataLen").Len
}

// All is MBUF_LIST_FOREACH: it yields the packets from head to tail, leaving them on the
// list. The loop body must not change the list.
func (l *List) All() iter.Seq[*Mbuf] {
	return func(yield func(*Mbuf) bool) {
		for m := l.head; m != nil; m = m.nextpkt {
			if !yield(m) {
				return
			}
		}
	}
}

// ErrQueueFull is returned, wrapping syscall.ENOBUFS, by Queue.Enqueue when the queue is
// at its maximum length: the packet was dropped (freed) and counted, as mq_enqueue(9)
// drops it.
var ErrQueueFull = fmt.Errorf("mbuf: queue full, packet dropped: %w", syscall.ENOBUFS)

// A Queue is OpenBSD's struct mbuf_queue (FreeBSD's mbufq with a lock around it): a List
// behind a mutex with a maximum length, which drops and counts the packets that would pass
// it. Packets handed to it are its own until dequeued; a dropped packet is freed at once,
// outside the lock, as mq_enqueue does. A Queue is safe for concurrent use and must not be
// copied after first use.
//
// The zero value is an empty Queue with a maximum length of 0, which drops everything
// until SetMaxLen, as an mbuf_queue initialised with 0 does.
type Queue struct {
	mu     sync.Mutex
	list   List
	maxlen int
	drops  uint64
}

// NewQueue is mq_init(9): an empty Queue holding at most maxlen packets. A negative maxlen
// panics.
func NewQueue(maxlen int) *Queue {
	q := &Queue{}
	q.SetMaxLen(maxlen)
	return q
}

// SetMaxLen is mq_set_maxlen(9): it changes the maximum length. Packets already queued
// past a smaller maximum stay. A negative maxlen panics.
func (q *Queue) SetMaxLen(maxlen int) {
	if maxlen < 0 {
		panic("mbuf: Queue with a negative maximum length")
	}
	q.mu.Lock()
	q.maxlen = maxlen
	q.mu.Unlock()
}

// Enqueue is mq_enqueue(9): it appends packet m at the tail, unless the queue already
// holds its maximum: then m is freed, the drop counted, and ErrQueueFull returned. Either
// way m is no longer the caller's. m must be a single packet, as List.Enqueue requires; it
// panics otherwise.
func (q *Queue) Enqueue(m *Mbuf) error {
	if m.nextpkt != nil {
		panic("mbuf: Enqueue of a packet linked to others")
	}
	q.mu.Lock()
	if q.list.n >= q.maxlen {
		q.drops++
		q.mu.Unlock()
		m.FreeM()
		return ErrQueueFull
	}
	q.list.Enqueue(m)
	q.mu.Unlock()
	return nil
}

// Push is mq_push(9): it appends packet m at the tail, first dropping (freeing) the packet
// at the head if the queue is at its maximum, and reports whether it dropped one. It cannot
// fail; m must be a single packet (it panics otherwise). With a maximum of 0 the queue
// keeps the packet pushed last, as in OpenBSD, which also counts a drop when it had none
// to drop; here only packets freed are counted.
func (q *Queue) Push(m *Mbuf) (dropped bool) {
	if m.nextpkt != nil {
		panic("mbuf: Push of a packet linked to others")
	}
	var old *Mbuf
	q.mu.Lock()
	if q.list.n >= q.maxlen && q.list.n > 0 {
		q.drops++
		old = q.list.Dequeue()
	}
	q.list.Enqueue(m)
	q.mu.Unlock()
	old.FreeM()
	return old != nil
}

// Enlist is mq_enlist(9): it moves every packet of l to the tail of the queue if the queue
// is below its maximum — all of them, even past the maximum, as in OpenBSD — or else frees
// them all and counts them as drops. l is left empty either way. It returns how many
// packets were dropped.
func (q *Queue) Enlist(l *List) int {
	q.mu.Lock()
	if q.list.n < q.maxlen {
		q.list.Enlist(l)
		q.mu.Unlock()
		return 0
	}
	q.drops += uint64(l.n)
	q.mu.Unlock()
	return l.Purge()
}

// Dequeue is mq_dequeue(9): the packet at the head, taken off the queue, its NextPkt
// cleared; nil when the queue is empty.
func (q *Queue) Dequeue() *Mbuf {
	q.mu.Lock()
	m := q.list.Dequeue()
	q.mu.Unlock()
	return m
}

// Delist is mq_delist(9): it takes every packet off the queue at once and returns them as
// a List, the caller's to dequeue without the lock.
func (q *Queue) Delist() List {
	q.mu.Lock()
	l := q.list
	q.list = List{}
	q.mu.Unlock()
	return l
}

// Dechain is mq_dechain(9): it takes every packet off the queue and returns them linked
// by NextPkt (nil if there were none).
func (q *Queue) Dechain() *Mbuf {
	l := q.Delist()
	return l.Dechain()
}

// Purge is mq_purge(9): it frees every queued packet, outside the lock, and returns how
// many there were. Purged packets are not counted as drops.
func (q *Queue) Purge() int {
	l := q.Delist()
	return l.Purge()
}

// state returns the length, the maximum length and the drops, read together.
func (q *Queue) state() (n, maxlen int, drops uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.list.n, q.maxlen, q.drops
}

// Len is mq_len(9): the number of queued packets.
func (q *Queue) Len() int {
	n, _, _ := q.state()
	return n
}

// Empty is mq_empty(9): whether the queue holds no packet.
func (q *Queue) Empty() bool { return q.Len() == 0 }

// Full is mq_full(9): whether the queue holds its maximum length or more, so that
// Enqueue would drop.
func (q *Queue) Full() bool {
	n, maxlen, _ := q.state()
	return n >= maxlen
}

// MaxLen returns the maximum length (mq_maxlen).
func (q *Queue) MaxLen() int {
	_, maxlen, _ := q.state()
	return maxlen
}

// Drops is mq_drops(9): how many packets Enqueue, Push and Enlist have dropped since the
// queue was made.
func (q *Queue) Drops() uint64 {
	_, _, drops := q.state()
	return drops
}

// HDataLen is mq_hdatalen(9): the packet header length of the packet at the head, 0 when
// the queue is empty. It panics if that packet has no header.
func (q *Queue) HDataLen() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.list.HDataLen()
}
