package smr_test

import (
	"fmt"
	"sync/atomic"

	"github.com/softnet-go/softnet/smr"
)

// A conn is an entry of a lock-free table whose entries are recycled through a free
// list instead of being left to the garbage collector.
type conn struct {
	id   atomic.Uint64
	peer atomic.Pointer[string]
}

// Readers look entries up inside read sections; the writer unlinks an entry, advances the
// clock, and reuses the entry only once every section that might still see it has ended.
func Example() {
	s := smr.New("conns")
	var table [4]atomic.Pointer[conn]
	var free []*conn

	peer := func(name string) *string { return &name }
	c := new(conn)
	c.id.Store(7)
	c.peer.Store(peer("192.0.2.7:443"))
	table[1].Store(c)

	// A reader: no locks, no allocation, nothing that blocks between Enter and Exit.
	lookup := func(slot int) (uint64, string) {
		s.Enter()
		defer s.Exit()
		if c := table[slot].Load(); c != nil {
			return c.id.Load(), *c.peer.Load()
		}
		return 0, ""
	}
	fmt.Println(lookup(1))

	// The writer removes entry 1: unlink, then Advance for a goal.
	old := table[1].Swap(nil)
	goal := s.Advance()
	fmt.Println("reusable at once:", s.Poll(goal)) // true here: no reader is in a section

	// Before reusing the entry the writer waits for the goal (at once, here).
	s.Wait(goal)
	free = append(free, old)

	c = free[len(free)-1]
	c.id.Store(8)
	c.peer.Store(peer("198.51.100.8:80"))
	table[2].Store(c)
	fmt.Println(lookup(2))
	// Output:
	// 7 192.0.2.7:443
	// reusable at once: true
	// 8 198.51.100.8:80
}
