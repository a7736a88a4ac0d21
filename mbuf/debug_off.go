//go:build !mbufdebug

package mbuf

import (
	"fmt"
	"io"
)

// Without the mbufdebug tag every hook is an empty function the compiler inlines away.

func debugAlloc(*Mbuf)           {}
func debugFree(*Mbuf)            {}
func debugCheck(*Mbuf)           {}
func debugClusterAlloc(*cluster) {}
func debugClusterFree(*cluster)  {}

// LeakReport writes a report of the mbufs still allocated and returns how many there
// are. Built with -tags mbufdebug it lists each with the stack that allocated it; without
// the tag it can only count them, from the zone statistics.
func LeakReport(w io.Writer) int {
	s := Stats()
	n := int(s.Mbuf.InUse + s.Packet.InUse)
	fmt.Fprintf(w, "%d mbufs still out (build with -tags mbufdebug for their allocation stacks)\n", n)
	return n
}

const debugBuild = false
