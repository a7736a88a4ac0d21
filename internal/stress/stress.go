// Package stress holds the module's process-wide stress-test knobs, those FreeBSD's
// MBUF_STRESS_TEST kernel option compiles in: allocation failures injected into every
// uma zone (as m_defragrandomfailures does for m_defrag, but everywhere), and the
// fragmenting of every chain TCP input reads (net.inet.ip.mbuf_frag_size, whose
// ip_output passes every packet through m_fragment). Tests of any package of the module
// set them; the packages that honour them (uma, socket) read them on their hot paths
// with one atomic load each. Being internal, they are out of reach of the programs that
// embed the module: a knob that fails allocations or fragments input has no place in an
// API.
package stress

import (
	"fmt"
	"math"
	"sync/atomic"
)

// failThreshold is the failure-injection rate scaled to 2^32; 0 when off, so the check on
// the allocation path is one load.
var failThreshold atomic.Uint64

// SetFailureRate makes every non-blocking allocation in every uma zone (Alloc,
// AllocBulk) fail with probability p, counted as a failure. Waiting allocations
// (AllocWait) never fail this way. A rate of 0 turns it off (the default). p must be in
// [0, 1].
func SetFailureRate(p float64) error {
	if !(p >= 0 && p <= 1) {
		return fmt.Errorf("stress: failure rate %v: not in [0, 1]", p)
	}
	failThreshold.Store(uint64(math.Round(p * (1 << 32))))
	return nil
}

// FailureRate returns the rate set by SetFailureRate.
func FailureRate() float64 { return float64(failThreshold.Load()) / (1 << 32) }

// FailThreshold is the failure rate scaled to 2^32, for uma's allocation path: 0 when
// off; otherwise an allocation fails when a uniform 32-bit draw is below it.
func FailThreshold() uint64 { return failThreshold.Load() }

// The lengths of SetInputFragment besides a positive one: they are mbuf.FragRandomOnce
// and mbuf.FragRandomEach (this package cannot import mbuf, which imports uma, which
// imports it; socket checks that they agree).
const (
	FragRandomOnce = -1 // one random length in [1, 255] for every fragment of a chain
	FragRandomEach = -2 // a new random length in [1, 255] for each fragment
)

// inputFrag is the fragment length set by SetInputFragment, stored plus fragOffset so
// that 0 means off: the check on the input path is one load.
var inputFrag atomic.Int64

const fragOffset = 1 - FragRandomEach // FragRandomEach is stored as 1

// SetInputFragment makes the socket package pass every chain a TCP socket's input reads
// from its descriptor through (*mbuf.Mbuf).Fragment(mbuf.DontWait, length) before it is
// queued in the receive sockbuf, so that the splice, readers and output see chains of
// length-byte mbufs (each in a cluster of its own). length may be FragRandomOnce or
// FragRandomEach; 0 turns it off (the default). While it is on, one input pass reads at
// most 256 fragments' worth of bytes. A Fragment that fails for want of memory leaves
// the chain as it was (as m_fragment does), and the bytes are queued unfragmented. UDP
// input and the kernel splice path are not fragmented.
func SetInputFragment(length int) error {
	if length < FragRandomEach {
		return fmt.Errorf("stress: input fragment length %d: below %d", length, FragRandomEach)
	}
	if length == 0 {
		inputFrag.Store(0)
		return nil
	}
	inputFrag.Store(int64(length) + fragOffset)
	return nil
}

// InputFragment returns the length set by SetInputFragment: 0 when off.
func InputFragment() int {
	v := inputFrag.Load()
	if v == 0 {
		return 0
	}
	return int(v - fragOffset)
}
