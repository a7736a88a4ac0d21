//go:build !race

package uma

// raceLock is empty without the race detector: a P's cache is only ever written by the
// goroutine that has pinned that P, so it needs no lock. Readers of the statistics load its
// counters as plain machine words, which may be a moment stale but are never torn.
type raceLock struct{}

func (raceLock) lock()       {}
func (raceLock) unlock()     {}
func (raceLock) readLock()   {}
func (raceLock) readUnlock() {}
