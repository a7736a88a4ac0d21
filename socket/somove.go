package socket

import (
	"syscall"

	"github.com/softnet-go/softnet/mbuf"
)

// somove is somove(): one pass of the user-space path, on the source's worker, with
// so.rcv.mu and dst.snd.mu held. It moves the smallest of the data pending in the
// source, the maximum left and the room in the drain's send sockbuf (moveLen): a stream
// as whole mbufs without copying (somoveStream), datagrams whole, one record after
// another (somoveDgram, PR_ATOMIC). The pass ends as every pass does (sorelease): it
// reports whether the splice is over, and the reason, if any, is left in the source's
// so_error.
func (so *Socket) somove(sp *sosplice, dst *Socket) moveResult {
	var r moveResult
	var maxreached bool
	var err syscall.Errno
	if so.proto().flags&prAtomic != 0 {
		r.moved, maxreached, err = so.somoveDgram(sp, dst)
	} else {
		r.moved, maxreached, err = so.somoveStream(sp, dst)
	}
	r.end = so.sorelease(sp, dst, maxreached, err)
	return r
}

// somoveStream is somove for a stream (TCP): it moves what moveLen allows as whole mbufs,
// splitting one only at the maximum or into an empty drain, so that a drain holding data
// waits for room rather than taking a sliver of an mbuf. It returns whether it moved
// anything, whether it stopped at the maximum, and an error that ends the splice.
func (so *Socket) somoveStream(sp *sosplice, dst *Socket) (moved, maxreached bool, err syscall.Errno) {
	rcv, snd := &so.rcv, &dst.snd
	if stay, e := spliceChecks(so, dst); stay {
		return false, false, e
	}
	n, maxreached, ok := moveLen(rcv.cc, sp.len.Load(), sp.max, snd.space(), snd.lowat)
	if !ok || rcv.mb == nil {
		return false, maxreached, 0
	}
	split := maxreached || snd.cc == 0
	m, k := rcv.take(n, split)
	if split && k < n { // no mbuf for the split: wait for memory, no short splice
		sp.waitMemory()
		maxreached = false
	}
	if m != nil {
		snd.appendStream(m)
	}
	if k > 0 {
		sp.len.Add(int64(k))
	}
	return k > 0, maxreached, 0
}

// somoveDgram is somove for datagrams (UDP): it moves whole records, one after another,
// while each fits in what moveLen allows. A datagram larger than the drain's send
// sockbuf ends the splice with EMSGSIZE; one that does not fit now, or that the maximum
// falls inside, stays. The sender's address (MT_SONAME) is dropped: the drain's peer is
// the destination. It returns as somoveStream does.
func (so *Socket) somoveDgram(sp *sosplice, dst *Socket) (moved, maxreached bool, err syscall.Errno) {
	rcv, snd := &so.rcv, &dst.snd
	for {
		if stay, e := spliceChecks(so, dst); stay {
			return moved, false, e
		}
		n, atMax, ok := moveLen(rcv.cc, sp.len.Load(), sp.max, snd.space(), snd.lowat)
		if !ok || rcv.mb == nil {
			return moved, atMax, 0
		}
		data := rcv.mb
		if data.Type() == mbuf.MTSoname {
			data = data.Next()
		}
		size := data.Length()
		if size > snd.hiwat {
			return moved, atMax, syscall.EMSGSIZE
		}
		if n < size {
			return moved, atMax, 0 // no room now, or the maximum falls inside it: it stays
		}
		if size < n {
			atMax = false // this one does not reach the maximum
		}
		rec := rcv.takeRecord()
		if rec.Type() == mbuf.MTSoname {
			rec = rec.Free()
		}
		if rec.Flags()&mbuf.MPktHdr != 0 {
			rec.PktHdr().Len = size
		}
		snd.appendRecord(rec)
		sp.len.Add(int64(size))
		moved = true
		if atMax || rcv.mb == nil {
			return moved, atMax, 0
		}
	}
}

// moveLen is somove's "how many bytes can be moved now": the cc bytes the source holds,
// cut to what sp_max leaves after the moved bytes (maxreached: the cut applies; max 0 is
// no maximum) and to the space in the drain's send sockbuf (which clears maxreached). It
// returns ok false, and maxreached false, when the drain has no room, or has less than
// its low-water mark lowat and less than would move: the splice waits for sowwakeup.
func moveLen(cc int, moved, max int64, space, lowat int) (n int, maxreached, ok bool) {
	n = cc
	if max > 0 && moved+int64(n) >= max {
		n, maxreached = int(max-moved), true
	}
	if space <= 0 {
		return 0, false, false
	}
	if space < n {
		if space < lowat {
			return 0, false, false
		}
		n, maxreached = space, false
	}
	return n, maxreached, true
}

// sorelease is how every pass of somove and somoveKernel ends (OpenBSD's release label):
// the pass's error, or EFBIG when it stopped at exactly sp_max bytes, goes into the
// source's so_error, and it returns whether the splice is over (spliceEnd). so.rcv.mu
// and dst.snd.mu are held.
func (so *Socket) sorelease(sp *sosplice, dst *Socket, maxreached bool, err syscall.Errno) bool {
	e, end := spliceEnd(passEnd{
		err:        err,
		maxreached: maxreached,
		exact:      sp.len.Load() == sp.max,
		rcvDone:    so.rcv.flags&sbCantMore != 0 && so.rcv.mb == nil && sp.pipe == nil,
		sndDone:    dst.snd.flags&sbCantMore != 0,
		pending:    so.soerr.Load() != 0,
	})
	if e != 0 {
		so.soerr.Store(int32(e))
	}
	return end
}

// A passEnd is what a pass of the splice found, for the decision it ends with.
type passEnd struct {
	err        syscall.Errno // the pass failed: EPIPE, EMSGSIZE, the drain's error...
	maxreached bool          // the pass stopped at sp_max
	exact      bool          // ssp_len == ssp_max: exactly the maximum has moved
	rcvDone    bool          // the source can receive no more and has nothing left to move
	sndDone    bool          // the drain can send no more
	pending    bool          // an error is pending on the source (so_error)
}

// spliceEnd is the end of a pass of the splice: the error to leave in the source's
// so_error (EFBIG when the pass stopped at the maximum and the maximum has moved
// exactly; 0 for none) and whether the splice is over: at EOF with nothing left to move,
// when the drain can send no more, at the maximum, or on an error, new or pending.
func spliceEnd(p passEnd) (syscall.Errno, bool) {
	err := p.err
	if err == 0 && p.maxreached && p.exact {
		err = syscall.EFBIG
	}
	return err, p.rcvDone || p.sndDone || p.maxreached || err != 0 || p.pending
}

// spliceChecks is step 1 of somove: an error on the source ends the splice (the error
// stays there); a drain that cannot send gives EPIPE; the drain's error is copied, unless
// it is ETIMEDOUT, EFBIG or ELOOP (the end of the drain's own splice in the other
// direction); a drain still connecting makes the splice wait. It reports whether the
// pass stops here (stay), and the error that ends the splice, if any.
func spliceChecks(so, dst *Socket) (stay bool, err syscall.Errno) {
	if so.soerr.Load() != 0 {
		return true, 0
	}
	if dst.snd.flags&sbCantMore != 0 {
		return true, syscall.EPIPE
	}
	if e := syscall.Errno(dst.soerr.Load()); e != 0 && e != syscall.ETIMEDOUT && e != syscall.EFBIG && e != syscall.ELOOP {
		return true, e
	}
	if dst.state.Load()&ssConnected == 0 {
		return true, 0
	}
	return false, 0
}

// waitMemory makes the splice wait for memory when a split found none: a short-lived
// goroutine waits for an mbuf with mbuf.Wait, gives it back and queues the splice task.
func (sp *sosplice) waitMemory() {
	if !sp.memw.CompareAndSwap(false, true) {
		return
	}
	ctx := sp.so.ctx()
	go func() {
		if m, err := mbuf.Get(mbuf.Wait(ctx), mbuf.MTData); err == nil {
			m.Free()
		}
		sp.memw.Store(false)
		sp.queue()
	}()
}
