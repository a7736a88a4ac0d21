package netq

import (
	"sync"
	"testing"
)

// TestGoroutineIdentity checks both identities (curg, and goid, which stands in for it
// on other architectures): stable within a goroutine, distinct between live goroutines.
func TestGoroutineIdentity(t *testing.T) {
	for name, id := range map[string]func() uintptr{"curg": curg, "goid": goid} {
		me := id()
		if me == 0 || id() != me {
			t.Fatalf("%s: %d then %d in one goroutine", name, me, id())
		}
		const n = 16
		ids := make([]uintptr, n)
		var started, finish sync.WaitGroup
		started.Add(n)
		finish.Add(1)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ids[i] = id()
				started.Done()
				finish.Wait() // all alive at once, so no g is reused
			})
		}
		started.Wait()
		finish.Done()
		wg.Wait()
		seen := map[uintptr]bool{me: true}
		for _, x := range ids {
			if seen[x] {
				t.Fatalf("%s: two live goroutines share identity %#x", name, x)
			}
			seen[x] = true
		}
	}
}
