package mbuf

import "math/rand/v2"

// Fragment lengths with a meaning of their own, as MBUF_STRESS_TEST's m_fragment takes.
const (
	FragRandomOnce = -1 // one random length in [1, 255] for every fragment
	FragRandomEach = -2 // a new random length in [1, 255] for each fragment
)

// Fragment is FreeBSD's m_fragment(9) (MBUF_STRESS_TEST; OpenBSD has none): it copies a
// packet into a chain of fragments of length bytes each (capped at MCLBytes), each in a
// 2 KiB cluster of its own, the first taking the packet header and tags, then frees the
// original and returns the copy: a chain as ragged as a driver can make one, for tests.
// length may be FragRandomOnce or FragRandomEach. A chain without a packet header, a
// length of 0 or below -2, or an empty packet is returned unchanged.
//
// On failure the partial copy is freed and Fragment returns the original chain,
// unchanged, with the error.
func (m *Mbuf) Fragment(how How, length int) (*Mbuf, error) {
	debugCheck(m)
	if m.flags&MPktHdr == 0 || length == 0 || length < FragRandomEach {
		return m, nil
	}
	total := m.Length()
	if total == 0 {
		return m, nil
	}
	switch {
	case length > MCLBytes:
		length = MCLBytes
	case length == FragRandomOnce:
		length = 1 + rand.IntN(255)
	}
	var head, tail *Mbuf
	f := MPktHdr
	for off := 0; off < total; {
		n, err := GetCL(how, m.typ, f)
		if err != nil {
			head.FreeM()
			return m, err
		}
		f = 0
		k := length
		if k == FragRandomEach {
			k = 1 + rand.IntN(255)
		}
		k = min(k, total-off)
		n.fillFrom(m, off, k)
		off += k
		if tail == nil {
			head = n
		} else {
			tail.next = n
		}
		tail = n
	}
	head.MovePktHdr(m)
	tail.setEOR(m.Last())
	m.FreeM()
	return head, nil
}
