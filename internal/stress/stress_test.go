package stress

import "testing"

func TestFailureRate(t *testing.T) {
	defer SetFailureRate(0)
	for _, p := range []float64{-0.1, 1.5} {
		if err := SetFailureRate(p); err == nil {
			t.Errorf("SetFailureRate(%v) accepted", p)
		}
	}
	if err := SetFailureRate(0.25); err != nil {
		t.Fatal(err)
	}
	if got := FailureRate(); got != 0.25 {
		t.Errorf("FailureRate() = %v, want 0.25", got)
	}
	if got := FailThreshold(); got != 1<<30 {
		t.Errorf("FailThreshold() = %d, want %d", got, 1<<30)
	}
	SetFailureRate(0)
	if FailThreshold() != 0 {
		t.Error("rate 0 leaves a threshold")
	}
}

func TestInputFragment(t *testing.T) {
	defer SetInputFragment(0)
	if err := SetInputFragment(FragRandomEach - 1); err == nil {
		t.Errorf("SetInputFragment(%d) accepted", FragRandomEach-1)
	}
	for _, length := range []int{0, 1, 7, FragRandomOnce, FragRandomEach} {
		if err := SetInputFragment(length); err != nil {
			t.Fatal(err)
		}
		if got := InputFragment(); got != length {
			t.Errorf("InputFragment() = %d, want %d", got, length)
		}
	}
}
