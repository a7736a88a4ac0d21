// Package procpin pins the calling goroutine to its P, the way sync.Pool does, so that
// per-P caches can be used without atomics or locks (FreeBSD's critical_enter around the
// per-CPU UMA cache).
//
// While pinned, a goroutine must not block, park, or allocate much: a stop-the-world, and
// so a GOMAXPROCS change, waits for it to unpin. That is also why a pinned goroutine can
// trust the P id it got: no P goes away while it holds one.
package procpin

import _ "unsafe" // for go:linkname

// Pin is runtime.procPin: it disables preemption and returns the id of the current P,
// in [0, GOMAXPROCS).
//
//go:linkname Pin runtime.procPin
func Pin() int

// Unpin is runtime.procUnpin: it ends the section begun by Pin.
//
//go:linkname Unpin runtime.procUnpin
func Unpin()
