package smr

import (
	"runtime"
	"strconv"
	"time"

	"github.com/softnet-go/softnet/internal/procpin"
)

// Poll is smr_poll(9) without waiting: it reports whether every read section that could
// have seen what was unlinked before Advance returned goal has ended, so that it may be
// reused. goal must come from Advance on this SMR (or be SeqInvalid, which is always met).
//
// Most polls are answered from the cached read clock without touching any slot. Otherwise
// Poll scans every slot and moves the read clock as far as the sections allow, so a
// failed poll still makes the next one cheaper. Poll never blocks and may be called
// anywhere, even inside a read section (where a goal after the section's own start is,
// of course, never met).
func (s *SMR) Poll(goal Seq) bool { return s.poll(goal, false) }

// Wait is smr_wait(9): it returns once Poll(goal) would return true, spinning, then
// yielding, then sleeping with a growing backoff while some section holds the goal back.
// Sections are short, so a wait is normally short; but Wait has no deadline, and it waits
// as long as a reader stays in its section.
//
// Wait must not be called inside a read section: it would wait for itself, so it fails
// instead, fatally since the section is pinned. Nor may it be called with the goroutine
// pinned by other means.
func (s *SMR) Wait(goal Seq) { s.poll(goal, true) }

// Synchronize is smr_synchronize(9): Wait(Advance()). When the writer has other work, it
// is cheaper to keep the goal from Advance and Poll it later, as SMR zones do.
func (s *SMR) Synchronize() { s.Wait(s.Advance()) }

// poll implements Poll and Wait, following smr_poll: a cached answer, a check of the
// goal, then a scan of the slots.
func (s *SMR) poll(goal Seq, wait bool) bool {
	if goal == SeqInvalid {
		return true
	}
	// rd is loaded before wr, so the rd we hold can never be after the wr we hold.
	rd := Seq(s.rd.Load())
	if goal.Leq(rd) {
		return true
	}
	// wr is loaded before any slot, so a slot published after this load holds a value at
	// or after wr (save for the stale race handled in scanSlot).
	wr := Seq(s.wr.Load())
	if goal.Gt(wr) {
		// FreeBSD takes a goal after wr_seq for one that wrapped and says it is met. With
		// 64 bits nothing wraps in a process's life, so it can only be a caller's bug
		// (a goal from another SMR, or made up) and saying "met" would let an item be
		// reused under a reader.
		panic("smr(" + s.name + "): goal " + strconv.FormatUint(uint64(goal), 10) +
			" is after the write clock " + strconv.FormatUint(uint64(wr), 10) +
			"; goals come from Advance on the same SMR")
	}
	met := goal.Leq(s.scan(rd, wr, goal, false))
	if met || !wait {
		return met
	}
	// Only a waiter that would really wait pays for the check that it is not waiting
	// for its own section.
	s.assertNotEntered()
	return goal.Leq(s.scan(Seq(s.rd.Load()), wr, goal, true))
}

// assertNotEntered panics if the calling goroutine is inside a read section of s (a
// fatal panic, since the section pins the goroutine, but one that names the mistake). A valid
// slot on the caller's P can only be its own: a goroutine in a section holds its P until
// Exit, so no other goroutine runs on that P meanwhile.
func (s *SMR) assertNotEntered() {
	pid := procpin.Pin()
	t := s.table.Load()
	entered := pid < len(t.slots) && t.slots[pid].seq.Load() != uint64(SeqInvalid)
	procpin.Unpin()
	if entered {
		panic("smr(" + s.name + "): Wait inside a read section would wait for itself")
	}
}

// scan is smr_poll_scan: it finds the earliest sequence any current section observed
// (wr if none), publishes it as the read clock if that moves the clock forward, and
// returns the read clock. With wait, it first waits on each slot until that slot meets
// goal or goes idle. Slots of Ps that no longer exist are scanned too; they are idle.
func (s *SMR) scan(rd, wr, goal Seq, wait bool) Seq {
	min := wr
	for _, c := range s.table.Load().slots {
		if cs := scanSlot(c, rd, goal, wait); cs != SeqInvalid {
			min = minSeq(min, cs)
		}
	}
	for {
		cur := Seq(s.rd.Load())
		if !min.Gt(cur) {
			// Another poller got further; its answer is as good as ours.
			return cur
		}
		if s.rd.CompareAndSwap(uint64(cur), uint64(min)) {
			return min
		}
	}
}

// scanSlot is smr_poll_cpu: the sequence a slot's section observed, SeqInvalid if the
// slot is idle. With wait, it waits until the slot is idle or at or after goal.
func scanSlot(c *slot, rd, goal Seq, wait bool) Seq {
	var b backoff
	for {
		cs := Seq(c.seq.Load())
		if cs == SeqInvalid {
			return cs
		}
		// The stale race of smr_enter: a reader may load the clock, be delayed, and
		// publish it after a poll that found its slot idle has moved rd past it. The
		// value is stale but the reader's loads come after its publication, so it cannot
		// hold anything freed before rd; count it as rd so that rd never moves back.
		if cs.Lt(rd) {
			cs = rd
		}
		if goal.Leq(cs) || !wait {
			return cs
		}
		b.wait()
	}
}

// A backoff paces a waiter: a few immediate retries (sections last nanoseconds to
// microseconds), then yields of the P, then sleeps doubling up to a millisecond for a
// reader whose thread the OS has descheduled.
type backoff struct {
	n     int
	sleep time.Duration
}

func (b *backoff) wait() {
	b.n++
	switch {
	case b.n <= 16:
		// Re-reading the slot is the spin.
	case b.n <= 64:
		runtime.Gosched()
	default:
		b.sleep = min(max(2*b.sleep, time.Microsecond), time.Millisecond)
		time.Sleep(b.sleep)
	}
}
