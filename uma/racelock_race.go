//go:build race

package uma

import (
	"sync/atomic"

	"github.com/softnet-go/softnet/internal/procpin"
)

// raceLock is a spin lock under the race detector, so that its model sees the statistics
// reads of per-P counters as synchronised. The owner takes it while pinned, so it must not
// park: it spins. Readers pin too while they hold it, so a holder is always running and
// every spin is short.
type raceLock struct{ held atomic.Bool }

func (l *raceLock) lock() {
	for !l.held.CompareAndSwap(false, true) {
	}
}

func (l *raceLock) unlock() { l.held.Store(false) }

func (l *raceLock) readLock() {
	procpin.Pin()
	l.lock()
}

func (l *raceLock) readUnlock() {
	l.unlock()
	procpin.Unpin()
}
