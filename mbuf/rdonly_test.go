package mbuf

import (
	"bytes"
	"testing"
)

// panicked reports whether f panicked.
func panicked(f func()) (yes bool) {
	defer func() { yes = recover() != nil }()
	f()
	return false
}

// mustReadOnly fails the test unless m refuses writes in place: not Writable, no leading
// or trailing space, no Tail, and Extend and Align panic.
func mustReadOnly(t *testing.T, what string, m *Mbuf) {
	t.Helper()
	if m.Writable() || m.LeadingSpace() != 0 || m.TrailingSpace() != 0 || m.Tail() != nil {
		t.Fatalf("%s: writable %v, leading %d, trailing %d, tail %d bytes", what,
			m.Writable(), m.LeadingSpace(), m.TrailingSpace(), len(m.Tail()))
	}
	if !panicked(func() { m.Extend(1) }) {
		t.Fatalf("%s: Extend did not panic", what)
	}
}

// TestRdOnlySharers: every operation that makes an mbuf share a cluster carries MRdOnly
// to it (mb_dupcl, m_extref), so that when the original read-only mbuf is freed, the
// sharer, now the cluster's only holder, is still read-only; writes then copy first (or
// go to new mbufs) and never reach the read-only cluster.
func TestRdOnlySharers(t *testing.T) {
	data := pattern(1500, 21)
	split := func(t *testing.T, m *Mbuf) (*Mbuf, []byte) {
		tail, err := m.Split(700, DontWait)
		if err != nil {
			t.Fatal(err)
		}
		m.FreeM()
		return tail, data[700:]
	}
	// Each case shares the read-only head of a one-cluster packet holding data, frees the
	// original's hold on the cluster, and returns the sharer with the bytes it must hold.
	cases := []struct {
		name  string
		share func(t *testing.T, m *Mbuf) (*Mbuf, []byte)
	}{
		{"CopyM", func(t *testing.T, m *Mbuf) (*Mbuf, []byte) {
			c, err := m.CopyM(100, 1000, DontWait)
			if err != nil {
				t.Fatal(err)
			}
			m.FreeM()
			return c, data[100:1100]
		}},
		{"CopyM(CopyAll)", func(t *testing.T, m *Mbuf) (*Mbuf, []byte) {
			c, err := m.CopyM(0, CopyAll, DontWait)
			if err != nil {
				t.Fatal(err)
			}
			m.FreeM()
			return c, data
		}},
		{"CopyPacket", func(t *testing.T, m *Mbuf) (*Mbuf, []byte) {
			c, err := m.CopyPacket(DontWait)
			if err != nil {
				t.Fatal(err)
			}
			m.FreeM()
			return c, data
		}},
		{"Split", split},
		{"Split without header", func(t *testing.T, m *Mbuf) (*Mbuf, []byte) {
			m.demote()
			return split(t, m)
		}},
		{"MakeSpace", func(t *testing.T, m *Mbuf) (*Mbuf, []byte) {
			h, o, err := m.MakeSpace(600, 40, DontWait)
			if err != nil || o != 0 || h == m {
				t.Fatalf("MakeSpace on a read-only cluster: %v, offset %d, in place %v", err, o, h == m)
			}
			rest := h.Unlink() // the sharer holding the bytes after the space
			m.FreeM()          // the original, and the space
			if rest == nil || rest.ext == nil {
				t.Fatal("MakeSpace did not share the cluster")
			}
			return rest, data[600:]
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := inUse()
			m := buildChain(t, data, extCluster)
			m.SetFlags(MRdOnly, 0)
			mustReadOnly(t, "the original", m)
			cl := m.ext
			s, want := c.share(t, m)
			if s.ext != cl || cl.ref.Load() != 1 {
				t.Fatalf("the sharer is not the cluster's only holder (ref %d)", cl.ref.Load())
			}
			mustEqual(t, "the sharer", s, want)
			if s.Flags()&MRdOnly == 0 {
				t.Fatalf("the sharer lost MRdOnly: %v", s.Flags())
			}
			mustReadOnly(t, "the sharer, alone on the cluster", s)

			// A second sharer, made now, is read-only too, and sees no write of the first.
			s2, err := s.CopyM(0, CopyAll, DontWait)
			if err != nil {
				t.Fatal(err)
			}
			mustReadOnly(t, "a sharer of the sharer", s2)
			if err := s.CopyBack(0, []byte("written"), DontWait); err != nil {
				t.Fatal(err)
			}
			if s.ext == cl || s.Flags()&MRdOnly != 0 || !s.Writable() {
				t.Fatal("CopyBack wrote without a private copy")
			}
			mustEqual(t, "the read-only cluster after CopyBack", s2, want)
			mustEqual(t, "the written copy", s, append([]byte("written"), want[len("written"):]...))
			s.FreeM()

			// Writes in front and behind go to new mbufs.
			p, err := s2.Prepend(8, DontWait)
			if err != nil || p == s2 {
				t.Fatalf("Prepend on a read-only sharer: %v, in place %v", err, p == s2)
			}
			copy(p.Data(), "prepend:")
			if err := p.Append([]byte(":appended"), DontWait); err != nil {
				t.Fatal(err)
			}
			if s2.next == nil || s2.Len() != len(want) {
				t.Fatal("Append wrote into the read-only sharer")
			}
			mustEqual(t, "after Prepend and Append", p, append(append([]byte("prepend:"), want...), ":appended"...))
			if !bytes.Equal(s2.Data(), want) {
				t.Fatal("the read-only cluster changed")
			}
			p.FreeM()
			checkUsage(t, before)
		})
	}
}

// TestRdOnlyUnshare: Unshare gives a read-only sharer a private, writable copy, and only
// that copy loses MRdOnly.
func TestRdOnlyUnshare(t *testing.T) {
	before := inUse()
	data := pattern(3000, 22)
	m := buildChain(t, data, extCluster)
	m.SetFlags(MRdOnly, 0)
	c, err := m.CopyM(0, CopyAll, DontWait)
	if err != nil {
		t.Fatal(err)
	}
	m.FreeM()
	c, err = c.Unshare(DontWait)
	if err != nil {
		t.Fatal(err)
	}
	for mm := c; mm != nil; mm = mm.next {
		if !mm.Writable() || mm.Flags()&MRdOnly != 0 {
			t.Fatalf("Unshare left %v", mm.Flags())
		}
	}
	mustEqual(t, "Unshare", c, data)
	c.FreeM()
	checkUsage(t, before)
}
