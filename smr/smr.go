package smr

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/softnet-go/softnet/internal/procpin"
)

// An SMR is one safe-memory-reclamation domain, smr_t: a write clock shared by the
// writers of some lock-free structures and a read-section slot per P for their readers.
// Make it with New; it must not be copied after first use. Every method is safe for
// concurrent use.
type SMR struct {
	// wr is s_wr_seq, the write clock. Every Enter reads it and every Advance writes it,
	// so it has a line of its own.
	wr atomic.Uint64
	_  [120]byte

	// rd is s_rd_seq: every goal at or before it has been met. Pollers write it; Enter
	// never touches it, so its own line keeps polls from slowing readers down.
	rd atomic.Uint64
	_  [120]byte

	// table is read by every Enter and Exit and written only when GOMAXPROCS grows.
	table atomic.Pointer[slotTable]
	mu    sync.Mutex // serialises growth of table
	name  string
}

// New is smr_create(9): it returns a new SMR whose write clock has just started. The name
// appears in panic messages. There is no smr_destroy: an SMR nobody refers to is garbage.
// (The zero SMR is not usable: its clock would read as SeqInvalid.)
func New(name string) *SMR {
	return newAt(name, seqInit)
}

// newAt returns an SMR whose clock starts at init, which must be odd; tests use it to sit
// just below the wrap.
func newAt(name string, init Seq) *SMR {
	if init&1 == 0 {
		panic("smr: even initial sequence")
	}
	s := &SMR{name: name}
	s.wr.Store(uint64(init))
	s.rd.Store(uint64(init))
	s.table.Store(newSlotTable(runtime.GOMAXPROCS(0)))
	return s
}

// Name returns the name given to New.
func (s *SMR) Name() string { return s.name }

// Current is smr_current(9): the write clock now. A section whose Enter reads the clock
// from now on observes at least this value.
func (s *SMR) Current() Seq { return Seq(s.wr.Load()) }

// Advance is smr_advance(9): it steps the write clock and returns the new value as the
// goal a writer waits for (with Poll or Wait) before reusing what it unlinked before the
// call. Every change the caller made before Advance is visible to any section that
// begins once the goal is met, since Go's atomics are sequentially consistent.
//
// Unlike FreeBSD's, this Advance never waits (64-bit sequences need no wrap throttle), so
// it may be called anywhere, even inside a read section.
func (s *SMR) Advance() Seq { return Seq(s.wr.Add(seqIncr)) }

// Enter is smr_enter(9): it begins a read section on the calling goroutine. It pins the
// goroutine to its P (so it cannot be preempted or migrate until Exit) and publishes the
// current write clock in the P's slot; from then on, no item a writer unlinks after that
// moment is reused until Exit. See the package documentation for what a section may do.
//
// Enter does not allocate (except, once, when GOMAXPROCS has grown past every P this SMR
// has seen). Entering a section of this SMR while already in one is a fatal error (the
// runtime cannot unwind the pinned outer section), reported with the SMR's name.
func (s *SMR) Enter() {
	pid := procpin.Pin()
	var c *slot
	if t := s.table.Load(); t != nil && pid < len(t.slots) {
		c = t.slots[pid]
	} else {
		c = s.enterSlow()
	}
	// The clock is loaded after the slot is found, which matters when enterSlow grew the
	// table: a poller that scanned the old table, and so missed this slot, loaded the
	// clock before the new table was published, hence before this load, so this section
	// observes every goal that poller could have declared met.
	//
	// The store is an atomic exchange: a full fence, so the loads of the section cannot
	// be reordered before it (smr_enter's atomic_add_acq_int), and the old value it
	// returns tells a nested Enter apart at no extra cost.
	if old := c.seq.Swap(s.wr.Load()); old != uint64(SeqInvalid) {
		c.seq.Store(old)
		procpin.Unpin()
		// The outer section is still pinned, so the runtime turns this panic into a fatal
		// "panic holding locks" — after printing this message.
		panic("smr(" + s.name + "): Enter inside a read section of the same SMR; sections never nest")
	}
}

// Exit is smr_exit(9): it ends the read section begun by Enter on the calling goroutine,
// clearing the P's slot (with release semantics: the section's loads are done before a
// poller can see the slot clear) and unpinning. Pointers loaded inside the section must
// not be used after Exit. Exit without Enter panics.
func (s *SMR) Exit() {
	// A second pin reads the P id: the P cannot have changed since Enter pinned it.
	pid := procpin.Pin()
	t := s.table.Load()
	if t == nil || pid >= len(t.slots) || t.slots[pid].seq.Swap(uint64(SeqInvalid)) == uint64(SeqInvalid) {
		procpin.Unpin()
		panic("smr(" + s.name + "): Exit outside a read section")
	}
	procpin.Unpin()
	procpin.Unpin()
}
