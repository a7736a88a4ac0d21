package procpin

import (
	"runtime"
	"testing"
)

func TestPinReturnsAValidP(t *testing.T) {
	for range 1000 {
		p := Pin()
		Unpin()
		if p < 0 || p >= runtime.GOMAXPROCS(0) {
			t.Fatalf("Pin() = %d, want [0, %d)", p, runtime.GOMAXPROCS(0))
		}
	}
}
