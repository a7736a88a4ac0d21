//go:build mbufdebug

package mbuf

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// With the mbufdebug tag, every mbuf and cluster handed out is tracked with the stack
// that allocated it and, once freed, the stack that freed it. Freed internal storage and
// freed clusters are poisoned, and the poison is checked when they are handed out again,
// so a write through a slice kept past Free is caught. Any use of a freed mbuf through
// the API, and any second free, panics with both stacks.
//
// The records hold pointers into the slabs, so in this mode a slab the reclaimer gives
// back stays reachable and its addresses are never reused: no record can describe
// another slab's item.

const poison = 0xdb

const debugBuild = true

type debugRec struct {
	live        bool
	alloc, free []uintptr
}

var dbg struct {
	sync.Mutex
	mbufs    map[*Mbuf]*debugRec
	clusters map[*cluster]*debugRec
}

func init() {
	dbg.mbufs = make(map[*Mbuf]*debugRec)
	dbg.clusters = make(map[*cluster]*debugRec)
}

func callers() []uintptr {
	pcs := make([]uintptr, 32)
	return pcs[:runtime.Callers(3, pcs)]
}

func formatStack(pcs []uintptr) string {
	if len(pcs) == 0 {
		return "\t(none)\n"
	}
	var b strings.Builder
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		fmt.Fprintf(&b, "\t%s\n\t\t%s:%d\n", f.Function, f.File, f.Line)
		if !more {
			return b.String()
		}
	}
}

func (r *debugRec) panicf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	panic(fmt.Sprintf("%s\nallocated at:\n%sfreed at:\n%s", msg, formatStack(r.alloc), formatStack(r.free)))
}

// poisonPage is a page of poison: poisoned and poisonFill compare and copy whole
// pages of it (memequal and memmove), not byte loops, so that a debug build under -race,
// which would instrument every byte, stays fast enough for 1-byte-fragment stress tests.
var poisonPage = bytes.Repeat([]byte{poison}, 4096)

func poisoned(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(poisonPage))
		if !bytes.Equal(b[:n], poisonPage[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

func poisonFill(b []byte) {
	for len(b) > 0 {
		b = b[copy(b, poisonPage):]
	}
}

func debugAlloc(m *Mbuf) {
	dbg.Lock()
	defer dbg.Unlock()
	r := dbg.mbufs[m]
	if r == nil {
		r = &debugRec{}
		dbg.mbufs[m] = r
	} else if r.live {
		r.panicf("mbuf: %p handed out twice", m)
	} else if !poisoned(m.dat[:]) {
		r.panicf("mbuf: %p written after it was freed", m)
	}
	r.live, r.alloc, r.free = true, callers(), nil
}

func debugFree(m *Mbuf) {
	dbg.Lock()
	defer dbg.Unlock()
	r := dbg.mbufs[m]
	if r == nil {
		panic(fmt.Sprintf("mbuf: freeing %p, which was never allocated", m))
	}
	if !r.live {
		r.panicf("mbuf: double free of %p", m)
	}
	r.live, r.free = false, callers()
	poisonFill(m.dat[:])
}

func debugCheck(m *Mbuf) {
	dbg.Lock()
	defer dbg.Unlock()
	if r := dbg.mbufs[m]; r != nil && !r.live {
		r.panicf("mbuf: use of %p after it was freed", m)
	}
}

func debugClusterAlloc(c *cluster) {
	dbg.Lock()
	defer dbg.Unlock()
	r := dbg.clusters[c]
	if r == nil {
		r = &debugRec{}
		dbg.clusters[c] = r
	} else if r.live {
		r.panicf("mbuf: cluster %p handed out twice", c)
	} else if c.kind != extCaller && !poisoned(c.buf) {
		r.panicf("mbuf: cluster %p written after it was freed", c)
	}
	r.live, r.alloc, r.free = true, callers(), nil
}

func debugClusterFree(c *cluster) {
	dbg.Lock()
	defer dbg.Unlock()
	r := dbg.clusters[c]
	if r == nil {
		panic(fmt.Sprintf("mbuf: freeing cluster %p, which was never handed out", c))
	}
	if !r.live {
		r.panicf("mbuf: double free of cluster %p", c)
	}
	r.live, r.free = false, callers()
	if c.kind != extCaller {
		poisonFill(c.buf)
	}
}

// LeakReport writes a report of the mbufs still allocated, grouped by the stack that
// allocated them, and returns how many there are. Built with -tags mbufdebug it lists
// each with the stack that allocated it; without the tag it can only count them, from
// the zone statistics.
func LeakReport(w io.Writer) int {
	dbg.Lock()
	type group struct {
		stack string
		n     int
	}
	byStack := map[string]*group{}
	total := 0
	for _, r := range dbg.mbufs {
		if !r.live {
			continue
		}
		total++
		s := formatStack(r.alloc)
		g := byStack[s]
		if g == nil {
			g = &group{stack: s}
			byStack[s] = g
		}
		g.n++
	}
	dbg.Unlock()
	groups := make([]*group, 0, len(byStack))
	for _, g := range byStack {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].n > groups[j].n })
	fmt.Fprintf(w, "%d mbufs still out\n", total)
	for _, g := range groups {
		fmt.Fprintf(w, "%d allocated at:\n%s", g.n, g.stack)
	}
	return total
}
