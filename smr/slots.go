package smr

import (
	"runtime"
	"sync/atomic"

	"github.com/softnet-go/softnet/internal/procpin"
)

// A slot is one P's read-section state, struct smr's c_seq: the write sequence the P
// observed when its current section began, or SeqInvalid outside sections. Only the
// goroutine that has pinned the P writes it; pollers read it.
//
// Each slot is its own 128-byte allocation (so 128-byte aligned by its size class): a P
// entering and leaving sections must not bounce a line another P is writing, and two
// lines cover the adjacent-line prefetcher.
type slot struct {
	seq atomic.Uint64
	_   [120]byte
}

// A slotTable lists the slot of every P id ever seen, indexed by P id. It only grows:
// a grown table keeps the same *slot values, so a section published in a slot of the old
// table is still seen by a poller scanning the new one, and a P that went away leaves an
// invalid slot behind (its section ended before the stop-the-world that removed it).
type slotTable struct {
	slots []*slot
}

// newSlotTable returns a table of n fresh (invalid) slots.
func newSlotTable(n int) *slotTable {
	t := &slotTable{slots: make([]*slot, n)}
	for i := range t.slots {
		t.slots[i] = new(slot)
	}
	return t
}

// enterSlow finds the slot of a P whose id is beyond the table, which happens when
// GOMAXPROCS has grown since the table was made. It is called pinned and returns pinned,
// with the slot of the P it is then pinned to, like sync.Pool's pinSlow: it unpins to
// take the mutex (a pinned goroutine must not park), grows the table to the current
// GOMAXPROCS, and pins again, possibly on another P, so it loops until the table covers
// the P it holds.
func (s *SMR) enterSlow() *slot {
	if s.table.Load() == nil {
		procpin.Unpin()
		panic("smr: Enter on an SMR not made by New")
	}
	for {
		procpin.Unpin()
		s.mu.Lock()
		if n, t := runtime.GOMAXPROCS(0), s.table.Load(); n > len(t.slots) {
			nt := &slotTable{slots: make([]*slot, n)}
			copy(nt.slots, t.slots)
			for i := len(t.slots); i < n; i++ {
				nt.slots[i] = new(slot)
			}
			s.table.Store(nt)
		}
		s.mu.Unlock()
		pid := procpin.Pin()
		if t := s.table.Load(); pid < len(t.slots) {
			return t.slots[pid]
		}
	}
}
