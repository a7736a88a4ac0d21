package smr

// A Seq is a sequence number of an SMR's global clock, smr_seq_t. Valid sequence numbers
// are odd (the clock starts odd and Advance adds 2), so the zero value, SeqInvalid, never
// names a point in time; a per-P slot holds it while its P is outside a read section.
//
// Seq is 64 bits wide where FreeBSD's is 32. The clock still wraps — New starts it a
// little below the wrap point on purpose, so every run crosses it — and every comparison
// is modular, as SMR_SEQ_LT and friends (borrowed from tcp_seq.h) are. But 2^63 advances
// cannot happen in the life of a process, so two live sequence numbers are always less
// than half the ring apart. That spares us FreeBSD's SMR_SEQ_MAX_DELTA throttle in
// smr_advance and the ABA window a long-preempted poller would open with 32 bits.
type Seq uint64

// SeqInvalid is SMR_SEQ_INVALID: not a time. A slot holds it outside read sections, and
// Poll and Wait treat it as a goal that is already met (nothing to wait for), so it can
// stand for "no goal" in a structure that records goals.
const SeqInvalid Seq = 0

// seqIncr is SMR_SEQ_INCR: the step of the write clock. Stepping by 2 keeps every valid
// value odd.
const seqIncr = 2

// seqInit is where New starts the write clock: 2^20 advances below the wrap, the way
// Linux starts jiffies five minutes before their wrap, so that the modular comparisons
// are exercised in every long enough run rather than once in a lifetime. It is odd.
const seqInit = ^Seq(0) - 1<<21 + 2

// Lt is SMR_SEQ_LT: a is before b, modulo the wrap.
func (a Seq) Lt(b Seq) bool { return int64(a-b) < 0 }

// Leq is SMR_SEQ_LEQ: a is before b or equal to it, modulo the wrap.
func (a Seq) Leq(b Seq) bool { return int64(a-b) <= 0 }

// Gt is SMR_SEQ_GT: a is after b, modulo the wrap.
func (a Seq) Gt(b Seq) bool { return int64(a-b) > 0 }

// Geq is SMR_SEQ_GEQ: a is after b or equal to it, modulo the wrap.
func (a Seq) Geq(b Seq) bool { return int64(a-b) >= 0 }

// Delta is SMR_SEQ_DELTA: the signed distance from b to a (positive when a is after b).
func (a Seq) Delta(b Seq) int64 { return int64(a - b) }

// minSeq is SMR_SEQ_MIN: the earlier of a and b, modulo the wrap.
func minSeq(a, b Seq) Seq {
	if a.Lt(b) {
		return a
	}
	return b
}
