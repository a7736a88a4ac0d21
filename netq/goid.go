package netq

import "runtime"

// goid returns the current goroutine's id, parsed from the first line of its stack trace
// ("goroutine 123 [running]:"). It takes about a microsecond; it is curg on architectures
// without curg_*.s.
func goid() uintptr {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) <= len(prefix) || string(b[:len(prefix)]) != prefix {
		panic("netq: cannot read the goroutine id")
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
