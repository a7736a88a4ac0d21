//go:build !amd64 && !arm64

package netq

// curg returns the current goroutine's id (goid.go); amd64 and arm64 read the runtime's
// g directly instead (curg_*.s).
func curg() uintptr { return goid() }
