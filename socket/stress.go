package socket

import (
	"sync/atomic"

	"github.com/softnet-go/softnet/internal/stress"
	"github.com/softnet-go/softnet/mbuf"
)

// The input path's side of stress.SetInputFragment (MBUF_STRESS_TEST's
// net.inet.ip.mbuf_frag_size, moved to the socket input path): while it is on, every
// chain a TCP socket's input reads is passed through (*mbuf.Mbuf).Fragment before it is
// queued. The knob itself lives in internal/stress, out of the package's API.

// stress's random fragment lengths are mbuf's: the array lengths below are negative, and
// the file does not compile, if they differ.
var (
	_ [mbuf.FragRandomOnce - stress.FragRandomOnce]struct{}
	_ [stress.FragRandomOnce - mbuf.FragRandomOnce]struct{}
	_ [mbuf.FragRandomEach - stress.FragRandomEach]struct{}
	_ [stress.FragRandomEach - mbuf.FragRandomEach]struct{}
)

// inputFragment is the fragment length stress.SetInputFragment set: 0 when off (the cost
// on the input path is one atomic load).
func inputFragment() int { return stress.InputFragment() }

// fragBatch bounds the fragments one input pass makes: with the hook on, input reads at
// most fragBatch fragments' worth of bytes per pass (the mean of [1, 255] for the random
// modes), as m_fragment in ip_output sees one packet at a time, so 1-byte fragments cost
// a bounded amount of cluster memory per pass.
const fragBatch = 256

// fragMean is the mean fragment length of the random modes.
const fragMean = 128

// fragStats counts the chains the hook fragmented and those it could not (no memory).
var fragStats struct {
	done, failed atomic.Int64
}

// fragReadLimit bounds one input pass's read while the hook is on (length is the
// fragment length, not 0).
func fragReadLimit(length, limit int) int {
	per := length
	if per <= 0 {
		per = fragMean
	}
	return max(1, min(limit, per*fragBatch))
}

// fragmentInput passes a chain just read through Fragment (length is the fragment
// length, not 0). On failure it returns the chain unchanged.
func fragmentInput(length int, m *mbuf.Mbuf) *mbuf.Mbuf {
	if m.Flags()&mbuf.MPktHdr == 0 {
		return m
	}
	m.FixHdr() // a chain readInto joined from two reads: the header counts the first
	f, err := m.Fragment(mbuf.DontWait, length)
	if err != nil {
		fragStats.failed.Add(1)
		return f
	}
	fragStats.done.Add(1)
	return f
}
