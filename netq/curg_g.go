//go:build amd64 || arm64

package netq

// curg returns the address of the current goroutine's runtime g (curg_*.s).
func curg() uintptr
