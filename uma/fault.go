package uma

import (
	"math/rand/v2"

	"github.com/softnet-go/softnet/internal/stress"
)

// failureInjected draws against the failure rate stress.SetFailureRate set (the
// MBUF_STRESS_TEST knob of the module's tests); callers check stress.FailThreshold()
// first, inline, so the cost when off is one load.
func failureInjected() bool {
	return uint64(rand.Uint32()) < stress.FailThreshold()
}
