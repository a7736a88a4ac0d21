package socket

import (
	"fmt"
	"sync/atomic"

	"github.com/softnet-go/softnet/mbuf"
)

// inputFrag is the input-fragmenting length set by SetInputFragment, stored plus
// fragOffset so that 0 means off: the check on the input path is one load.
var inputFrag atomic.Int64

const fragOffset = 3 // mbuf.FragRandomEach (-2) is stored as 1

// fragBatch bounds the fragments one input pass makes: with the hook on, input reads at
// most fragBatch fragments' worth of bytes per pass (the mean of [1, 255] for the random
// modes), as m_fragment in ip_output sees one packet at a time, so 1-byte fragments cost
// a bounded amount of cluster memory per pass.
const fragBatch = 256

// fragMean is the mean fragment length of the random modes.
const fragMean = 128

// SetInputFragment is FreeBSD's MBUF_STRESS_TEST hook (net.inet.ip.mbuf_frag_size, whose
// ip_output passes every packet through m_fragment), moved to the socket input path:
// while it is on, every chain a TCP socket's input reads from its descriptor is passed
// through (*mbuf.Mbuf).Fragment(mbuf.DontWait, length) before it is queued in the
// receive sockbuf, so that the splice, readers and output see chains of length-byte
// mbufs (each in a cluster of its own). length may be mbuf.FragRandomOnce or
// mbuf.FragRandomEach; 0 turns it off (the default; the cost when off is one atomic
// load per input pass). While it is on, one pass reads at most 256 fragments' worth of
// bytes. A Fragment that fails for want of memory leaves the chain as it was (as
// m_fragment does), and the bytes are queued unfragmented. It is for tests, and applies
// to every socket of the process; UDP input and the kernel splice path are not
// fragmented.
func SetInputFragment(length int) error {
	if length < mbuf.FragRandomEach {
		return fmt.Errorf("socket: input fragment length %d: below %d", length, mbuf.FragRandomEach)
	}
	if length == 0 {
		inputFrag.Store(0)
		return nil
	}
	inputFrag.Store(int64(length) + fragOffset)
	return nil
}

// InputFragment returns the length set by SetInputFragment (MBUF_STRESS_TEST's
// mbuf_frag_size): 0 when off.
func InputFragment() int {
	v := inputFrag.Load()
	if v == 0 {
		return 0
	}
	return int(v - fragOffset)
}

// fragStats counts the chains the hook fragmented and those it could not (no memory).
var fragStats struct {
	done, failed atomic.Int64
}

// fragReadLimit bounds one input pass's read while the hook is on (v is inputFrag's
// value, not 0).
func fragReadLimit(v int64, limit int) int {
	per := int(v - fragOffset)
	if per <= 0 {
		per = fragMean
	}
	return max(1, min(limit, per*fragBatch))
}

// fragmentInput passes a chain just read through Fragment (v is inputFrag's value, not
// 0). On failure it returns the chain unchanged.
func fragmentInput(v int64, m *mbuf.Mbuf) *mbuf.Mbuf {
	if m.Flags()&mbuf.MPktHdr == 0 {
		return m
	}
	m.FixHdr() // a chain readInto joined from two reads: the header counts the first
	f, err := m.Fragment(mbuf.DontWait, int(v-fragOffset))
	if err != nil {
		fragStats.failed.Add(1)
		return f
	}
	fragStats.done.Add(1)
	return f
}
