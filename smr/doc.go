// Package smr is FreeBSD's smr(9), safe memory reclamation, for Go: it lets readers look
// items up in a lock-free structure while writers unlink those items and recycle them
// through a pool, without a reader ever seeing an item reused under it.
//
// The garbage collector already keeps memory alive while anyone points at it; what it
// cannot prevent is a pool (a uma zone, a free list) handing an item that a reader still
// holds to a new owner. SMR makes the writer wait for those readers instead, as FreeBSD's
// "global unbounded sequences" do (subr_smr.c):
//
//   - An SMR has a write clock. A reader brackets each lookup with Enter and Exit, a read
//     section: Enter pins the goroutine to its P and publishes the clock it saw in that
//     P's slot; Exit clears the slot. Neither allocates nor takes a lock.
//   - A writer unlinks an item (an atomic store of the structure's pointer), then calls
//     Advance, which steps the clock and returns a goal. Once Poll(goal) reports true, or
//     Wait(goal) returns, every section that could have found the item has ended, and the
//     item may be reused. Synchronize does both at once.
//   - Poll scans the slots of every P that ever ran (GOMAXPROCS may change at run time)
//     and caches the earliest clock still in use, so most polls cost one atomic load.
//
// # Rules for readers
//
// A read section runs with the goroutine pinned to its P, exactly like the inside of
// sync.Pool: it cannot be preempted, and a stop-the-world (a GC phase, a GOMAXPROCS
// change) waits for it. Hence:
//
//   - Keep sections short: a lookup, a few loads, taking a reference. Do nothing that can
//     block or park: no channel operations, mutexes, sleeps, syscalls, cgo
//     calls, I/O, runtime.Gosched, and never Wait or Synchronize. The runtime aborts a
//     goroutine that parks while pinned ("schedule: holding locks"), and a syscall may
//     lose the P, breaking the section.
//   - Avoid allocating: it is allowed, but a section that allocates much delays the next
//     stop-the-world for everyone.
//   - Do not panic: the runtime refuses to unwind a pinned goroutine and ends the program
//     ("panic holding locks"). Code in a section should not be able to index out of range
//     or dereference nil.
//   - Sections of one SMR never nest; a nested Enter is a fatal error. Sections of
//     different SMRs may nest (each SMR has its own slots). Enter and Exit are called by
//     the same goroutine, in pairs.
//   - An item pointer obtained inside a section is valid only until Exit. To keep an
//     item, take a reference on it (a refcount, a lock bit) inside the section and check
//     that it is still the item looked for, since it may have been unlinked already.
//   - Load the structure's pointers with sync/atomic; SMR orders those loads after Enter
//     and before Exit, and the writer's reuse after Exit.
//
// # Rules for writers
//
// Unlink first, then Advance: Advance only covers what was unlinked before it. Reuse the
// item only after Poll(goal) or Wait(goal) says the goal is met. Goals from Advance may be
// kept and polled much later (they never expire), so a writer can batch many frees under
// one goal and poll when it needs the items, as FreeBSD's UMA does per bucket.
// SeqInvalid is a goal that is always met.
//
// # Differences from FreeBSD
//
// Sequences are 64 bits (see Seq), so Advance never waits to keep rd and wr within half
// the ring, and a goal after the write clock is a caller's bug (Poll panics) rather than
// an expired goal. The per-CPU state is per P, in a table that grows with GOMAXPROCS.
// The lazy (tick-based) and deferred (advance every N calls) flavours are not provided:
// Advance is one atomic add, and its callers already batch it per bucket of frees.
package smr
