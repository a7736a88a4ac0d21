//go:build mbufdebug

package mbuf

import (
	"strings"
	"testing"
)

func mustPanic(t *testing.T, what string, want []string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		msg, _ := r.(string)
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Fatalf("%s: panic %q lacks %q", what, msg, w)
			}
		}
	}()
	f()
	t.Fatalf("%s did not panic", what)
}

func TestDebugDoubleFree(t *testing.T) {
	before := inUse()
	m, _ := GetCL(DontWait, MTData, 0)
	m.Free()
	mustPanic(t, "double free", []string{"double free", "allocated at:", "TestDebugDoubleFree", "freed at:"}, func() { m.Free() })
	checkUsage(t, before)
}

func TestDebugUseAfterFree(t *testing.T) {
	before := inUse()
	m, _ := Get(DontWait, MTData)
	m.Free()
	mustPanic(t, "use after free", []string{"use of", "after it was freed", "freed at:"}, func() { m.Adj(1) })
	checkUsage(t, before)
}

func TestDebugWriteAfterFree(t *testing.T) {
	m, _ := GetJCL(DontWait, MTData, 0, MJum16Bytes)
	m.Extend(10)
	stale := m.Data()
	m.Free()
	for _, b := range stale {
		if b != poison {
			t.Fatal("a freed cluster is not poisoned")
		}
	}
	stale[0] = 1 // a write through a slice kept past Free
	mustPanic(t, "write after free", []string{"written after it was freed", "freed at:"}, func() {
		for range 64 { // the same cluster comes back from this P's cache
			n, _ := GetJCL(DontWait, MTData, 0, MJum16Bytes)
			defer n.Free()
		}
	})
	// The allocation that panicked leaks its mbuf and cluster: the panic is meant to end
	// the program. Mend the poison so the cluster could be handed out again.
	stale[0] = poison
}

func TestDebugLeakReport(t *testing.T) {
	var b strings.Builder
	base := LeakReport(&b)
	m, _ := Get(DontWait, MTData)
	b.Reset()
	if n := LeakReport(&b); n != base+1 || !strings.Contains(b.String(), "TestDebugLeakReport") {
		t.Fatalf("LeakReport = %d:\n%s", n, b.String())
	}
	m.Free()
	if n := LeakReport(&b); n != base {
		t.Fatalf("LeakReport after free = %d, want %d", n, base)
	}
}
