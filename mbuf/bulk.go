package mbuf

import "github.com/softnet-go/softnet/uma"

// Operations on whole chains take and give back their mbufs a batch at a time, with
// uma's AllocBulk and FreeBulk: one pinned section per batch instead of one per mbuf (FreeBSD's
// MBP_PERSIST, which keeps the per-CPU cache across m_getcl's two allocations). For a chain of 32 clusters that is most of the cost of CopyM and
// FreeM.

const batch = 32

func zoneOf(o origin) *uma.Zone[Mbuf] {
	if o == fromPacket {
		return packetZone
	}
	return mbufZone
}

// A freeBatch collects released mbufs of one zone at a time for FreeBulk.
type freeBatch struct {
	n int
	o origin
	a [batch]*Mbuf
}

func (b *freeBatch) add(m *Mbuf, o origin) {
	if b.n == len(b.a) || (b.n > 0 && o != b.o) {
		b.flush()
	}
	b.o = o
	b.a[b.n] = m
	b.n++
}

func (b *freeBatch) flush() {
	if b.n > 0 {
		zoneOf(b.o).FreeBulk(b.a[:b.n])
		b.n = 0
	}
}

// An allocBatch hands out up to want mbufs from the mbuf zone, taking them a batch at a
// time. close gives back any it took and did not hand out.
type allocBatch struct {
	how  How
	want int // mbufs still to be handed out
	i, n int // a[i:n] are taken and not yet handed out
	a    [batch]*Mbuf
}

// get returns an empty mbuf, as the mbuf-zone part of get(how, t, f) does.
func (b *allocBatch) get(t Type, f Flags) (*Mbuf, error) {
	if b.i == b.n {
		if err := b.refill(); err != nil {
			return nil, err
		}
	}
	m := b.a[b.i]
	b.a[b.i] = nil
	b.i++
	b.want--
	m.init(t, f, fromMbuf)
	return m, nil
}

// refill takes the next batch: what AllocBulk gives, or, when it gives nothing and the
// mode is Wait, one mbuf waited for.
func (b *allocBatch) refill() error {
	n, err := mbufZone.AllocBulk(b.a[:min(max(b.want, 1), len(b.a))])
	if n == 0 {
		if b.how.ctx == nil {
			return err
		}
		m, err := mbufZone.AllocWait(b.how.ctx)
		if err != nil {
			return err
		}
		b.a[0], n = m, 1
	}
	b.i, b.n = 0, n
	return nil
}

func (b *allocBatch) close() {
	if b.i < b.n {
		mbufZone.FreeBulk(b.a[b.i:b.n])
		clear(b.a[b.i:b.n])
		b.i = b.n
	}
}
