package uma

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
)

// failThreshold is the failure-injection rate scaled to 2^32; 0 when off, so the check on
// the allocation path is one load.
var failThreshold atomic.Uint64

// SetFailureRate makes every non-blocking allocation in every zone (Alloc, AllocBulk) fail
// with probability p, counted as a failure, as FreeBSD's m_defragrandomfailures does for
// m_defrag, but everywhere. It is for tests: a rate of 0 turns it off. Waiting
// allocations (AllocWait) never fail this way. p must be in [0, 1].
func SetFailureRate(p float64) error {
	if !(p >= 0 && p <= 1) {
		return fmt.Errorf("uma: failure rate %v: not in [0, 1]", p)
	}
	failThreshold.Store(uint64(math.Round(p * (1 << 32))))
	return nil
}

// FailureRate returns the rate set by SetFailureRate.
func FailureRate() float64 { return float64(failThreshold.Load()) / (1 << 32) }

// failureInjected draws against the rate; callers check failThreshold first, inline.
func failureInjected() bool {
	return uint64(rand.Uint32()) < failThreshold.Load()
}
