//go:build !amd64 && !arm64

package netq

import "runtime"

// curg returns the current goroutine's id, parsed from the first line of its stack
// trace ("goroutine 123 [running]:"). It takes about a microsecond, which only matters
// for Current and OnWorker; amd64 and arm64 use curg_*.s instead.
func curg() uintptr {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		panic("netq: cannot read goroutine id")
	}
	var id uintptr
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uintptr(c-'0')
	}
	return id
}
