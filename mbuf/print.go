package mbuf

import (
	"fmt"
	"io"
	"strings"
)

// Print is m_print(9): it writes a description of each mbuf of the chain — address,
// length, next, flags, type, storage and its reference count — with the packet header,
// tags, and a hex dump of at most maxLen bytes of data in all (maxLen < 0: everything).
func (m *Mbuf) Print(w io.Writer, maxLen int) {
	for ; m != nil; m = m.next {
		fmt.Fprintf(w, "mbuf: %p len: %d, next: %p, %v type %v", m, m.len, m.next, m.Flags(), m.typ)
		if m.ext != nil {
			fmt.Fprintf(w, " ext %s %d ref %d", extNames[m.ext.kind], len(m.ext.buf), m.ext.ref.Load())
			if m.ext.rdonly {
				fmt.Fprint(w, " rdonly")
			}
		}
		fmt.Fprintf(w, " off %d\n", m.off)
		if m.flags&MPktHdr != 0 {
			h := &m.hdr
			fmt.Fprintf(w, "  pkthdr len %d flowid %#x rcvif %d csum %#x/%#x", h.Len, h.FlowID, h.RcvIf, h.CsumFlags, h.CsumData)
			for t := m.tags; t != nil; t = t.next {
				fmt.Fprintf(w, " tag %d/%d[%d]", t.Cookie, t.Type, len(t.Data))
			}
			fmt.Fprintln(w)
		}
		d := m.Data()
		if maxLen >= 0 {
			d = d[:min(len(d), maxLen)]
			maxLen -= len(d)
		}
		for len(d) > 0 {
			line := d[:min(len(d), 16)]
			fmt.Fprintf(w, "  % x\n", line)
			d = d[len(line):]
		}
	}
}

// String is m_print(9) with at most 64 bytes of data: see Print.
func (m *Mbuf) String() string {
	var b strings.Builder
	m.Print(&b, 64)
	return b.String()
}
