package mbuf

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"syscall"
	"testing"

	"github.com/softnet-go/softnet/internal/stress"
)

// FuzzChainOps is the differential test of the chain operations: it decodes its input
// into a sequence of operations, applies each to up to four chains and to a plain []byte
// model of each, and after every step requires every chain to hold exactly its model's
// bytes and to be sane (windows inside storage, a header only on the head with the
// chain's length, shared clusters read-only on every side, MRdOnly the same on every
// mbuf of a cluster, so that no sharer of a read-only cluster is writable). Allocation
// failures are injected for single steps, and each operation's failure behaviour is
// checked: what it frees, what it leaves. Op 25 takes one more byte to choose among the
// later routines (Link, Unlink, ClGet/ClJGet, Get2, ExtAddRef, FreeMP, List and Queue,
// and marking mbufs MRdOnly or MEOR), so that the committed corpus keeps its meaning for
// the first 25 ops. At the end everything is freed and every zone must be back to the
// items it had in use before, and every ExtAdd and NewExtRef buffer freed exactly once.
func FuzzChainOps(f *testing.F) {
	for _, seed := range [][]byte{
		{},
		{0x10, 0x00, 1, 2, 3, 4},
		{0x40, 0x10, 1, 2, 3, 1, 0x00, 0x20, 2, 0, 1, 0x07, 0, 0xff, 0x10, 16, 0, 9, 12},
		{0xff, 0x7f, 0, 5, 6, 7, 7, 0, 0, 0, 16, 0, 1, 16, 0, 3, 3, 0, 4, 0, 8, 0, 0x80, 4, 9, 0, 0, 3},
		{0x30, 0x00, 5, 5, 1, 0, 0x10, 0, 4, 0, 0x20, 0, 0x20, 15, 0, 13, 0, 0x10, 0x10, 17, 0},
		{0x08, 0x01, 6, 23, 0, 0x40, 0, 1, 1, 7, 0, 0, 0, 0, 16, 1, 12, 1, 2, 0, 1, 20, 8, 0, 0, 0, 0x30, 0x41},
		{0x00, 0x05, 2, 14, 0, 200, 22, 0, 5, 15, 0, 11, 0, 0, 2, 18, 0, 10, 0, 12, 0, 20, 6, 0, 10, 9, 0, 5, 19, 0},
		{0x00, 0xc0, 0, 1, 1, 10, 0, 24, 0, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0xf0, 4, 0, 0, 0x10, 0, 21, 0, 1, 0, 0x20},
		// The later routines (op 25 and a sub-op byte).
		{0x41, 0x10, 0x01, 25, 0, 8, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 25, 0, 8, 1, 0, 0, 1, 9, 1, 0, 9, 0, 2, 0},
		{0x40, 0x01, 0x11, 25, 0, 3, 0x50, 2, 0, 0x21, 25, 0, 4, 1, 0x09, 2, 25, 1, 1, 0, 25, 0, 2, 2, 0, 1, 0},
		{0x09, 0x30, 0x01, 0x02, 25, 0, 5, 0, 0x09, 0x40, 0, 2, 0, 3, 0, 9, 0, 20, 1, 0, 25, 0, 5, 1, 2, 2, 0, 0x10, 0, 0x20, 8, 0},
		{0x20, 0x01, 0x02, 25, 0, 0, 0x30, 0x01, 0x03, 25, 0, 7, 2, 1, 0, 1, 25, 0, 7, 0, 0, 2, 25, 0, 6, 1, 25, 0, 2},
		{0x41, 0x10, 0x01, 25, 0, 8, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0xd9, 0, 8, 1, 0, 0, 0, 0x99, 0, 7, 0, 3, 4},
		{0x40, 0x01, 0x00, 0, 0, 0x40, 0x01, 0x00, 25, 0, 6, 1, 0, 0, 0x40, 0x01, 0x00, 25, 1, 6, 1},
		{0x40, 0x01, 0x00, 0, 0, 0x40, 0x01, 0x00, 25, 0, 1, 1, 25, 0, 2, 25, 0, 4, 0x10, 0, 25, 0, 8, 0, 0, 1, 25, 0, 8, 0, 0, 0, 3, 0, 1},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before := inUse()
		r := &chainRun{t: t, in: data}
		defer stress.SetFailureRate(0)
		r.slots = append(r.slots, r.build())
		for step := 0; len(r.in) > 0 && step < 64; step++ {
			r.step()
			r.check()
		}
		for _, s := range r.slots {
			s.m.FreeM()
		}
		if r.extAdded != r.extFreed {
			t.Fatalf("ExtAdd buffers: %d attached, %d freed", r.extAdded, r.extFreed)
		}
		checkUsage(t, before)
	})
}

var chainTrace = flag.Bool("chaintrace", false, "FuzzChainOps: log every step")

type slot struct {
	m     *Mbuf
	model []byte
}

type chainRun struct {
	t        *testing.T
	in       []byte
	slots    []slot
	extAdded int
	extFreed int
	seq      byte
}

func (r *chainRun) byte() byte {
	if len(r.in) == 0 {
		return 0
	}
	b := r.in[0]
	r.in = r.in[1:]
	return b
}

// num returns a number in [0, n] read from two bytes.
func (r *chainRun) num(n int) int {
	if n <= 0 {
		return 0
	}
	v := int(r.byte())<<8 | int(r.byte())
	return v % (n + 1)
}

// size returns a length: mostly small, sometimes past cluster sizes.
func (r *chainRun) size() int {
	switch b := r.byte(); b % 4 {
	case 0:
		return int(b) / 4
	case 1, 2:
		return r.num(5000)
	default:
		return r.num(70000)
	}
}

func (r *chainRun) bytes(n int) []byte {
	r.seq++
	return pattern(n, r.seq)
}

// build makes a chain of mixed storage: internal, clusters of every size, caller memory
// (writable or not), some with leading space, some shared with a copy freed at once.
func (r *chainRun) build() slot {
	n := r.size()
	data := r.bytes(n)
	f := Flags(0)
	if r.byte()%4 != 0 {
		f = MPktHdr
	}
	var head, tail *Mbuf
	rest := data
	for first := true; first || len(rest) > 0; first = false {
		spec := r.byte()
		var m *Mbuf
		var err error
		switch k := spec % 8; k {
		case 6: // caller memory, counted free
			size := min(len(rest)+int(spec>>4), MJum16Bytes)
			m, err = get(DontWait, MTData, f)
			if err == nil {
				ro := Flags(0)
				if spec&0x80 != 0 {
					ro = MRdOnly
				}
				buf := make([]byte, size)
				k := copy(buf, rest)
				if err = m.ExtAdd(buf, func([]byte) { r.extFreed++ }, ro, DontWait); err == nil {
					r.extAdded++
					m.Adj(-(size - k))
				} else {
					m.Free()
				}
			}
		case 7:
			m, err = getKind(DontWait, MTData, f, extCaller)
		default:
			m, err = getKind(DontWait, MTData, f, extType(k%6))
		}
		if err != nil {
			r.t.Fatal(err)
		}
		if m.ext == nil || m.ext.kind != extCaller {
			if lead := int(spec>>4) * 8; lead < m.TrailingSpace() {
				m.off = int32(lead)
			}
			m.Extend(copy(m.Tail(), rest))
		}
		rest = rest[m.Len():]
		if spec&0x08 != 0 && m.ext != nil { // share the cluster with a copy that dies at once
			c, err := m.CopyM(0, CopyAll, DontWait)
			if err != nil {
				r.t.Fatal(err)
			}
			c.FreeM()
		}
		if head == nil {
			head = m
		} else {
			tail.next = m
		}
		tail = m
		f = 0
	}
	if head.flags&MPktHdr != 0 {
		head.FixHdr()
	}
	return slot{head, data}
}

func (r *chainRun) pick() int { return int(r.byte()) % len(r.slots) }

func (r *chainRun) drop(i int) {
	r.slots = append(r.slots[:i], r.slots[i+1:]...)
}

func (r *chainRun) add(m *Mbuf, model []byte) {
	if m == nil {
		if len(model) != 0 {
			r.t.Fatalf("nil chain for %d bytes", len(model))
		}
		return
	}
	r.slots = append(r.slots, slot{m, bytes.Clone(model)})
}

func apply(model []byte, off int, b []byte) []byte {
	out := append([]byte(nil), model...)
	if end := off + len(b); end > len(out) {
		out = append(out, make([]byte, end-len(out))...)
	}
	copy(out[off:], b)
	return out
}

func (r *chainRun) step() {
	t := r.t
	op := r.byte()
	fail := op&0x80 != 0 // inject allocation failures into this step
	op &= 0x7f
	if len(r.slots) == 0 {
		r.slots = append(r.slots, r.build())
		return
	}
	i := r.pick()
	s := &r.slots[i]
	n := len(s.model)
	// expect checks an operation's error: nil, or injected ENOBUFS, or one of allowed.
	expect := func(what string, err error, allowed ...error) bool {
		if err == nil {
			return true
		}
		if fail && errors.Is(err, syscall.ENOBUFS) {
			return false
		}
		for _, a := range allowed {
			if errors.Is(err, a) {
				return false
			}
		}
		t.Fatalf("%s: unexpected error %v", what, err)
		return false
	}
	if fail {
		stress.SetFailureRate(1)
		defer stress.SetFailureRate(0)
	}
	if *chainTrace {
		t.Logf("op %d on slot %d of %d (%d bytes), fail %v, input left %d", op%26, i, len(r.slots), n, fail, len(r.in))
		defer func() {
			for j, s := range r.slots {
				t.Logf("  slot %d: %d bytes\n%v", j, len(s.model), s.m)
			}
		}()
	}
	switch op % 26 {
	case 0: // a new chain
		if len(r.slots) < 4 {
			stress.SetFailureRate(0)
			r.slots = append(r.slots, r.build())
		}
	case 1: // Split
		off := r.num(n + 1)
		tail, err := s.m.Split(off, DontWait)
		if off > n {
			if !errors.Is(err, ErrTooShort) {
				t.Fatalf("Split(%d) of %d bytes = %v", off, n, err)
			}
			return
		}
		if expect("Split", err) {
			model := s.model
			s.model = model[:off:off]
			r.add(tail, model[off:])
		}
	case 2, 3: // Cat, CatPkt
		j := r.pick()
		if j == i || n+len(r.slots[j].model) > 300000 {
			return
		}
		o := r.slots[j]
		if s.m.PktHdr() != nil && o.m.PktHdr() != nil {
			eor := len(eorAt(o.m)) > 0
			s.m.CatPkt(o.m)
			if at := eorAt(s.m); eor != (len(at) == 1) || len(at) > 1 || (eor && at[0] != count(s.m)-1) {
				t.Fatalf("CatPkt: MEOR on mbufs %v of %d, want only the last one's if n had it (%v)", at, count(s.m), eor)
			}
			s.model = append(s.model[:n:n], o.model...)
			r.drop(j)
		} else {
			r.join(s, j, (*Mbuf).Cat)
		}
	case 4: // Adj, both signs
		k := r.num(2*n+10) - n - 5
		s.m.Adj(k)
		if k >= 0 {
			s.model = s.model[min(k, n):]
		} else {
			s.model = s.model[:max(n+k, 0)]
		}
	case 5: // Pullup
		k := r.num(min(n+2, MJum64Bytes+2))
		m, err := s.m.Pullup(k, DontWait)
		if err != nil {
			if k <= int(s.m.len) && !fail {
				t.Fatalf("Pullup(%d) = %v", k, err)
			}
			if k <= n && k <= MJum64Bytes && !fail {
				t.Fatalf("Pullup(%d) of %d bytes = %v", k, n, err)
			}
			r.drop(i) // freed, as promised
			return
		}
		if m.Len() < k {
			t.Fatalf("Pullup(%d) left %d bytes in the head", k, m.Len())
		}
		s.m = m
	case 6: // Pulldown
		off := r.num(n + 1)
		k := r.num(min(n-off+2, 20000))
		mm, o, err := s.m.Pulldown(off, k, DontWait)
		if err != nil {
			if off+k <= n && !fail {
				t.Fatalf("Pulldown(%d, %d) of %d bytes = %v", off, k, n, err)
			}
			r.drop(i)
			return
		}
		if o+k > mm.Len() || !bytes.Equal(mm.Data()[o:o+k], s.model[off:off+k]) {
			t.Fatalf("Pulldown(%d, %d): not contiguous or wrong bytes", off, k)
		}
	case 7: // Prepend
		k := int(r.byte())
		if r.byte()%8 == 0 {
			k = r.num(9000)
		}
		m, err := s.m.Prepend(k, DontWait)
		if err != nil {
			if !fail {
				t.Fatalf("Prepend(%d) = %v", k, err)
			}
			r.drop(i)
			return
		}
		if m.Len() < k || (k > 0 && !m.Writable()) {
			t.Fatalf("Prepend(%d): head of %d bytes, writable %v", k, m.Len(), m.Writable())
		}
		b := r.bytes(k)
		copy(m.Data(), b)
		s.m = m
		s.model = append(b, s.model...)
	case 8: // CopyM
		if len(r.slots) >= 4 {
			return
		}
		off := r.num(n)
		k := r.num(n - off)
		if r.byte()%3 == 0 {
			k = CopyAll
		}
		c, err := s.m.CopyM(off, k, DontWait)
		if expect("CopyM", err) {
			if k == CopyAll {
				k = n - off
			}
			r.add(c, s.model[off:off+k:off+k])
		}
	case 9: // CopyBack
		off := r.num(n + 20)
		b := r.bytes(r.size() % 3000)
		if n+len(b) > 300000 {
			return
		}
		err := s.m.CopyBack(off, b, DontWait)
		if expect("CopyBack", err) {
			s.model = apply(s.model, off, b)
		}
	case 10: // Append
		b := r.bytes(r.size() % 6000)
		if expect("Append", s.m.Append(b, DontWait)) {
			s.model = append(s.model[:n:n], b...)
		}
	case 11: // Defrag
		m, err := s.m.Defrag(DontWait)
		if expect("Defrag", err) {
			if m.next != nil && n <= MJum64Bytes {
				t.Fatalf("Defrag of %d bytes left a chain", n)
			}
			s.m = m
		}
	case 12: // Collapse
		max := 1 + int(r.byte()%4)
		err := s.m.Collapse(DontWait, max)
		if expect("Collapse", err, ErrCollapse) {
			if frags := count(s.m); frags > max {
				t.Fatalf("Collapse(%d) left %d fragments", max, frags)
			}
		}
	case 13: // Unshare
		m, err := s.m.Unshare(DontWait)
		if err != nil {
			if !fail {
				t.Fatalf("Unshare = %v", err)
			}
			r.drop(i)
			return
		}
		for mm := m; mm != nil; mm = mm.next {
			if !mm.Writable() {
				t.Fatal("Unshare left a read-only mbuf")
			}
		}
		s.m = m
	case 14: // MakeSpace
		skip := r.num(n + 1)
		k := int(r.byte())
		mm, o, err := s.m.MakeSpace(skip, k, DontWait)
		if skip > n {
			if !errors.Is(err, ErrTooShort) {
				t.Fatalf("MakeSpace(%d) of %d bytes = %v", skip, n, err)
			}
			return
		}
		if expect("MakeSpace", err) {
			if o+k > mm.Len() || (k > 0 && !mm.Writable()) {
				t.Fatalf("MakeSpace(%d, %d): space not contiguous or not writable", skip, k)
			}
			b := r.bytes(k)
			copy(mm.Data()[o:], b)
			s.model = append(append(append([]byte(nil), s.model[:skip]...), b...), s.model[skip:]...)
		}
	case 15: // Fragment
		length := int(r.byte()) - 2
		if length > 0 && n/length > 600 {
			length = 2048
		}
		m, err := s.m.Fragment(DontWait, length)
		if m == nil {
			t.Fatal("Fragment returned no chain")
		}
		expect("Fragment", err)
		s.m = m
	case 16: // Dup
		if len(r.slots) >= 4 {
			return
		}
		c, err := s.m.Dup(DontWait)
		if expect("Dup", err) {
			for mm := c; mm != nil; mm = mm.next {
				if !mm.Writable() {
					t.Fatal("Dup made a read-only mbuf")
				}
			}
			r.add(c, s.model[:n:n])
		}
	case 17: // write through every Writable mbuf
		b := r.byte()
		pos := 0
		s.model = bytes.Clone(s.model)
		for mm := s.m; mm != nil; mm = mm.next {
			if mm.Len() > 0 && mm.Writable() {
				mm.Data()[0] = b
				s.model[pos] = b
			}
			pos += mm.Len()
		}
	case 18: // FreeM
		s.m.FreeM()
		r.drop(i)
	case 19: // Zero
		s.m.Zero()
	case 20: // Tail and Extend on the last mbuf
		last := s.m.Last()
		k := min(int(r.byte())*8, last.TrailingSpace())
		b := r.bytes(k)
		copy(last.Tail(), b)
		last.Extend(k)
		if h := s.m.PktHdr(); h != nil {
			h.Len += k
		}
		s.model = append(s.model[:n:n], b...)
	case 21: // CopyData, Apply, GetPtr, AppendBuffers
		off := r.num(n)
		k := r.num(n - off)
		got := make([]byte, k)
		s.m.CopyData(off, got)
		var via []byte
		s.m.Apply(off, k, func(b []byte) error { via = append(via, b...); return nil })
		if !bytes.Equal(got, s.model[off:off+k]) || !bytes.Equal(via, got) {
			t.Fatalf("CopyData/Apply(%d, %d) differ from the model", off, k)
		}
		if mm, o := s.m.GetPtr(off); mm == nil || (off < n && mm.Data()[o] != s.model[off]) {
			t.Fatalf("GetPtr(%d) = %v, %d", off, mm, o)
		}
		if !bytes.Equal(bytes.Join(s.m.AppendBuffers(nil), nil), s.model) {
			t.Fatal("AppendBuffers differ from the model")
		}
	case 22: // DevGet
		if len(r.slots) >= 4 {
			return
		}
		off := int(r.byte()) % 8
		m, err := DevGet(s.model, off, DontWait)
		if expect("DevGet", err) {
			if m != nil && m.off != int32(off) {
				t.Fatalf("DevGet(off %d): data at %d", off, m.off)
			}
			r.add(m, s.model[:n:n])
		}
	case 23: // CopyPacket
		if len(r.slots) >= 4 || s.m.PktHdr() == nil {
			return
		}
		c, err := s.m.CopyPacket(DontWait)
		if expect("CopyPacket", err) {
			r.add(c, s.model[:n:n])
		}
	case 24: // a tag, copied by CopyM(0)/Dup, dropped by Split and CatPkt
		if s.m.PktHdr() != nil {
			s.m.TagPrepend(TagGet(uint16(r.byte()), int(r.byte()%16)))
		}
	case 25:
		r.later(i, fail, expect)
	}
}

// join puts slot j's chain, its header demoted, behind slot s's with add (Cat or Link),
// and drops slot j.
func (r *chainRun) join(s *slot, j int, add func(m, n *Mbuf)) {
	o := r.slots[j]
	o.m.Demote()
	add(s.m, o.m)
	if h := s.m.PktHdr(); h != nil {
		h.Len += len(o.model)
	}
	n := len(s.model)
	s.model = append(s.model[:n:n], o.model...)
	r.drop(j)
}

// later is op 25: the routines added after the first 25 ops, chosen by one more byte.
func (r *chainRun) later(i int, fail bool, expect func(string, error, ...error) bool) {
	t := r.t
	s := &r.slots[i]
	n := len(s.model)
	sub := r.byte() % 9
	if *chainTrace {
		t.Logf("  later op %d", sub)
	}
	switch sub {
	case 0: // a new chain (what op 25 did before: any storage, caller memory included)
		if len(r.slots) < 4 {
			stress.SetFailureRate(0)
			r.slots = append(r.slots, r.build())
		}
	case 1: // Link: another chain behind this one, as it is
		j := r.pick()
		if j != i && n+len(r.slots[j].model) <= 300000 {
			r.join(s, j, (*Mbuf).Link)
		}
	case 2: // Unlink: the first mbuf off, the rest a chain of its own
		rest := s.m.Unlink()
		k := s.m.Len()
		if h := s.m.PktHdr(); h != nil {
			h.Len = k
		}
		model := s.model
		s.model = model[:k:k]
		if rest != nil {
			r.slots = append(r.slots, slot{rest, bytes.Clone(model[k:])})
		}
	case 3: // ClGet / ClJGet on a new mbuf holding a few bytes, linked behind the chain
		stress.SetFailureRate(0) // injected failures are for the cluster
		nm, err := get(DontWait, MTData, 0)
		if err != nil {
			t.Fatal(err)
		}
		add := r.bytes(int(r.byte()) % (MLen + 1))
		nm.Extend(copy(nm.Tail(), add))
		sizes := []int{MCLBytes, MJumPageSize, MJum9Bytes, MJum16Bytes, MJum64Bytes, 3000}
		size := sizes[r.byte()%6]
		if fail {
			stress.SetFailureRate(1)
		}
		if size == MCLBytes && r.byte()%2 == 0 {
			err = nm.ClGet(DontWait)
		} else {
			err = nm.ClJGet(DontWait, size)
		}
		if err != nil {
			if expect("ClJGet", err, syscall.EINVAL) || (size == 3000) != errors.Is(err, syscall.EINVAL) {
				t.Fatalf("ClJGet(%d) = %v", size, err)
			}
			if nm.ext != nil || !bytes.Equal(nm.Data(), add) {
				t.Fatal("a failed ClJGet changed the mbuf")
			}
		} else {
			if size == 3000 || nm.Len() != 0 || nm.TrailingSpace() != size || nm.ext == nil {
				t.Fatalf("ClJGet(%d): %d bytes, room %d", size, nm.Len(), nm.TrailingSpace())
			}
			add = r.bytes(min(r.size(), size))
			nm.Extend(copy(nm.Tail(), add))
		}
		s.m.Link(nm)
		if h := s.m.PktHdr(); h != nil {
			h.Len += len(add)
		}
		s.model = append(s.model[:n:n], add...)
	case 4: // Get2: a new chain of one mbuf holding what it was sized for
		if len(r.slots) >= 4 {
			return
		}
		size := r.size()
		f := Flags(0)
		if r.byte()%2 == 0 {
			f = MPktHdr
		}
		m, err := Get2(size, DontWait, MTData, f)
		if size > MJum64Bytes {
			if !errors.Is(err, ErrTooBig) {
				t.Fatalf("Get2(%d) = %v, want ErrTooBig", size, err)
			}
			return
		}
		if !expect("Get2", err) {
			return
		}
		b := r.bytes(size)
		if m.Extend(copy(m.Tail(), b)); m.Len() != size {
			t.Fatalf("Get2(%d) holds %d", size, m.Len())
		}
		if f != 0 {
			m.FixHdr()
		}
		r.add(m, b)
	case 5: // ExtAddRef: windows of caller memory or of a cluster, in up to three mbufs
		if len(r.slots) >= 4 {
			return
		}
		var ref *ExtRef
		var err error
		failMbufs := fail && r.byte()%2 == 0 // injected failures for the mbufs, not the storage
		if failMbufs {
			stress.SetFailureRate(0)
		}
		if r.byte()%2 == 0 {
			ro := Flags(0)
			if r.byte()%2 == 0 {
				ro = MRdOnly
			}
			ref, err = NewExtRef(r.bytes(r.size()%20000), func([]byte) { r.extFreed++ }, ro, DontWait)
			if !expect("NewExtRef", err) {
				return
			}
			r.extAdded++
		} else {
			sizes := []int{MCLBytes, MJumPageSize, MJum9Bytes, MJum16Bytes, MJum64Bytes}
			ref, err = GetClusterRef(DontWait, sizes[r.byte()%5])
			if !expect("GetClusterRef", err) {
				return
			}
			copy(ref.Bytes(), r.bytes(len(ref.Bytes())))
		}
		if failMbufs {
			stress.SetFailureRate(1)
		}
		st := ref.Bytes()
		early := r.byte()%2 == 0 // the holder lets go before the mbufs do
		var head *Mbuf
		var model []byte
		f := MPktHdr
		for k := 1 + int(r.byte()%3); k > 0; k-- {
			off := r.num(len(st))
			w := r.num(min(len(st)-off, 20000))
			m, err := get(DontWait, MTData, f)
			if !expect("Get", err) {
				head.FreeM()
				ref.Release()
				return
			}
			m.ExtAddRef(ref, off, w)
			if f != 0 {
				head = m
			} else {
				head.Link(m)
			}
			f = 0
			model = append(model, st[off:off+w]...)
		}
		head.FixHdr()
		if early {
			ref.Release()
		}
		r.add(head, model)
		if !early {
			r.check() // shared with the holder: read-only everywhere
			ref.Release()
		}
	case 6: // FreeMP: this packet and perhaps another, queued by hand, freed together
		q := s.m
		j := r.pick()
		if j != i {
			q.LinkPkt(r.slots[j].m)
		}
		q.FreeMP()
		if j != i {
			r.drop(max(i, j))
			r.drop(min(i, j))
		} else {
			r.drop(i)
		}
	case 7: // every chain through a Queue (Enqueue, or Push) and back out in order
		q := NewQueue(int(r.byte() % 4))
		var kept []slot
		drops := 0
		for _, sl := range r.slots {
			if r.byte()%2 == 0 {
				if q.Push(sl.m) {
					kept = kept[1:]
					drops++
				}
				kept = append(kept, sl)
			} else if err := q.Enqueue(sl.m); err == nil {
				kept = append(kept, sl)
			} else if !errors.Is(err, ErrQueueFull) {
				t.Fatalf("Queue.Enqueue = %v", err)
			} else {
				drops++
			}
		}
		if q.Len() != len(kept) || int(q.Drops()) != drops {
			t.Fatalf("Queue: %d queued, %d dropped; want %d, %d", q.Len(), q.Drops(), len(kept), drops)
		}
		var out []*Mbuf
		switch r.byte() % 3 {
		case 0:
			for m := q.Dequeue(); m != nil; m = q.Dequeue() {
				out = append(out, m)
			}
		case 1:
			l := q.Delist()
			for m := range l.All() {
				out = append(out, m)
			}
			if l.Dechain(); !l.Empty() {
				t.Fatal("List.Dechain left packets")
			}
		default:
			for m := q.Dechain(); m != nil; {
				next := m.UnlinkPkt()
				out = append(out, m)
				m = next
			}
		}
		if !q.Empty() || len(out) != len(kept) {
			t.Fatalf("Queue gave back %d packets of %d", len(out), len(kept))
		}
		for k, m := range out {
			if m != kept[k].m {
				t.Fatalf("Queue gave packet %d out of order", k)
			}
			m.nextpkt = nil // those that left through a List still link the next
		}
		r.slots = kept
	case 8: // mark an mbuf MRdOnly (with every mbuf that shares its cluster) or MEOR
		mm := s.m
		for k := r.num(count(s.m) - 1); k > 0; k-- {
			mm = mm.next
		}
		if r.byte()%2 == 0 {
			mm.SetFlags(MEOR, 0)
			return
		}
		mm.SetFlags(MRdOnly, 0)
		for _, o := range r.slots {
			for x := o.m; x != nil; x = x.next {
				if mm.ext != nil && x.ext == mm.ext {
					x.SetFlags(MRdOnly, 0)
				}
			}
		}
	}
}

func count(m *Mbuf) int {
	n := 0
	for ; m != nil; m = m.next {
		n++
	}
	return n
}

// check compares every chain with its model and checks the invariants.
func (r *chainRun) check() {
	r.t.Helper()
	rdonly := map[*cluster]Flags{} // MRdOnly of the mbufs seen on each cluster
	for i, s := range r.slots {
		mustEqual(r.t, fmt.Sprintf("slot %d", i), s.m, s.model)
		for mm := s.m; mm != nil; mm = mm.next {
			if mm.ext != nil && mm.ext.ref.Load() > 1 &&
				(mm.Writable() || mm.LeadingSpace() != 0 || mm.TrailingSpace() != 0) {
				r.t.Fatalf("slot %d: a shared cluster is writable", i)
			}
			if mm.flags&MRdOnly != 0 && (mm.Writable() || mm.LeadingSpace() != 0 || mm.TrailingSpace() != 0) {
				r.t.Fatalf("slot %d: an MRdOnly mbuf is writable", i)
			}
			if mm.ext == nil {
				continue
			}
			if f, ok := rdonly[mm.ext]; ok && f != mm.flags&MRdOnly {
				r.t.Fatalf("slot %d: mbufs on one cluster disagree on MRdOnly: a sharer lost it", i)
			}
			rdonly[mm.ext] = mm.flags & MRdOnly
		}
	}
}
