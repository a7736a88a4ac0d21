package mbuf

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"syscall"
	"testing"

	"github.com/softnet-go/softnet/uma"
)

// FuzzChainOps is the differential test of the chain operations: it decodes its input
// into a sequence of operations, applies each to up to four chains and to a plain []byte
// model of each, and after every step requires every chain to hold exactly its model's
// bytes and to be sane (windows inside storage, a header only on the head with the
// chain's length, shared clusters read-only on every side). Allocation failures are
// injected for single steps, and each operation's failure behaviour is checked: what it
// frees, what it leaves. At the end everything is freed and every zone must be back to
// the items it had in use before, and every ExtAdd buffer freed exactly once.
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
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before := inUse()
		r := &chainRun{t: t, in: data}
		defer uma.SetFailureRate(0)
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
		uma.SetFailureRate(1)
		defer uma.SetFailureRate(0)
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
			uma.SetFailureRate(0)
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
			s.m.CatPkt(o.m)
		} else {
			o.m.Demote()
			s.m.Cat(o.m)
			if h := s.m.PktHdr(); h != nil {
				h.Len += len(o.model)
			}
		}
		s.model = append(s.model[:n:n], o.model...)
		r.drop(j)
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
	case 25: // a new chain of caller memory
		if len(r.slots) < 4 {
			uma.SetFailureRate(0)
			r.slots = append(r.slots, r.build())
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
	for i, s := range r.slots {
		mustEqual(r.t, fmt.Sprintf("slot %d", i), s.m, s.model)
		for mm := s.m; mm != nil; mm = mm.next {
			if mm.ext != nil && mm.ext.ref.Load() > 1 &&
				(mm.Writable() || mm.LeadingSpace() != 0 || mm.TrailingSpace() != 0) {
				r.t.Fatalf("slot %d: a shared cluster is writable", i)
			}
		}
	}
}
