package socket

import (
	"syscall"

	"github.com/softnet-go/softnet/mbuf"
)

// somove is somove(): one pass of the user-space path, on the source's worker, with
// so.rcv.mu and dst.snd.mu held. It moves the smallest of the data pending in the
// source, the maximum left and the room in the drain's send sockbuf, as whole mbufs
// without copying; it splits an mbuf only at the maximum or when the drain's send sockbuf
// is empty, needs at least the drain's low-water mark of room for a partial move, and
// moves UDP datagrams whole (looping over the queued records). It reports whether the
// splice is over; the reason, if any, is left in the source's so_error.
func (so *Socket) somove(sp *sosplice, dst *Socket) moveResult {
	var r moveResult
	rcv, snd := &so.rcv, &dst.snd
	tcp := so.ni.tcp()
	maxreached := false
	var err syscall.Errno
	for {
		stay, e := spliceChecks(so, dst)
		if e != 0 || stay {
			err = e
			break
		}
		n := rcv.cc
		maxreached = false
		if sp.max > 0 && sp.len.Load()+int64(n) >= sp.max {
			n = int(sp.max - sp.len.Load())
			maxreached = true
		}
		space := snd.space()
		if space <= 0 {
			maxreached = false
			break
		}
		if space < n {
			maxreached = false
			if space < snd.lowat {
				break
			}
			n = space
		}
		if rcv.mb == nil {
			break
		}
		if !tcp {
			rec := rcv.mb
			data := rec
			if data.Type() == mbuf.MTSoname {
				data = data.Next()
			}
			size := data.Length()
			if size > snd.hiwat {
				err = syscall.EMSGSIZE
				break
			}
			if n < size {
				break // no room now, or the maximum falls inside it: it stays
			}
			if size < n {
				maxreached = false
			}
			rec = rcv.takeRecord()
			if rec.Type() == mbuf.MTSoname {
				rec = rec.Free() // the drain's peer is the destination
			}
			if rec.Flags()&mbuf.MPktHdr != 0 {
				rec.PktHdr().Len = size
			}
			snd.appendRecord(rec)
			sp.len.Add(int64(size))
			r.moved = true
			if !maxreached && rcv.mb != nil {
				continue // the next datagram
			}
			break
		}
		// TCP: whole mbufs; split one only at the maximum or into an empty drain.
		split := maxreached || snd.cc == 0
		var head, tail *mbuf.Mbuf
		k := 0
		for k < n && rcv.mb != nil {
			m := rcv.mb
			if m.Len() > n-k {
				if !split {
					break
				}
				part := rcv.takeStream(n - k)
				if part == nil { // no mbuf for the split: wait for memory, no short splice
					sp.waitMemory()
					maxreached = false
					break
				}
				m = part
			} else {
				rcv.unlinkHead()
			}
			k += m.Len()
			if head == nil {
				head = m
			} else {
				tail.SetNext(m)
			}
			tail = m
		}
		if k > 0 {
			snd.appendStream(head)
			sp.len.Add(int64(k))
			r.moved = true
		}
		break
	}
	// release:
	if err == 0 && maxreached && sp.len.Load() == sp.max {
		err = syscall.EFBIG
	}
	if err != 0 {
		so.soerr.Store(int32(err))
	}
	r.end = rcv.flags&sbCantMore != 0 && rcv.mb == nil ||
		snd.flags&sbCantMore != 0 || maxreached || err != 0 || so.soerr.Load() != 0
	return r
}

// spliceChecks is step 1 of somove: an error on the source ends the splice (the error
// stays there); a drain that cannot send gives EPIPE; the drain's error is copied, unless
// it is ETIMEDOUT, EFBIG or ELOOP (the end of the drain's own splice in the other
// direction); a drain still connecting makes the splice wait.
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
