package smr

import (
	"math"
	"testing"
)

func TestSeqComparisons(t *testing.T) {
	const top = Seq(math.MaxUint64) // odd: the last value before the wrap
	cases := []struct {
		a, b  Seq
		delta int64
	}{
		{1, 1, 0},
		{1, 3, -2},
		{5, 3, 2},
		{top, top, 0},
		{top, 1, -2}, // the clock wrapped between a and b
		{1, top, 2},  // b was just before the wrap
		{top - 2, 3, -6},
		{seqInit, 1, -1 << 21}, // 2^20 advances to the wrap
		{Seq(1) << 62, 1, 1<<62 - 1},
		{1, Seq(1) << 62, -(1<<62 - 1)},
	}
	for _, c := range cases {
		if got := c.a.Delta(c.b); got != c.delta {
			t.Errorf("Seq(%d).Delta(%d) = %d, want %d", c.a, c.b, got, c.delta)
		}
		lt, eq := c.delta < 0, c.delta == 0
		if c.a.Lt(c.b) != lt || c.a.Leq(c.b) != (lt || eq) ||
			c.a.Gt(c.b) != (!lt && !eq) || c.a.Geq(c.b) != !lt {
			t.Errorf("Seq(%d) vs %d: Lt %v Leq %v Gt %v Geq %v, want delta %d",
				c.a, c.b, c.a.Lt(c.b), c.a.Leq(c.b), c.a.Gt(c.b), c.a.Geq(c.b), c.delta)
		}
		if m := minSeq(c.a, c.b); (lt && m != c.a) || (!lt && m != c.b) {
			t.Errorf("minSeq(%d, %d) = %d", c.a, c.b, m)
		}
	}
}

func TestSeqInitIsOddAndBelowTheWrap(t *testing.T) {
	if seqInit&1 != 1 {
		t.Fatalf("seqInit %#x is even", uint64(seqInit))
	}
	if !seqInit.Lt(1) || seqInit.Delta(1) != -(1<<21) {
		t.Fatalf("seqInit %#x is not 2^20 advances below the wrap", uint64(seqInit))
	}
	if s := New("init"); s.Current() != seqInit {
		t.Fatalf("New: Current() = %d, want %d", s.Current(), seqInit)
	}
}

// TestClockWraps drives a clock across the wrap and checks that sections, goals and the
// read clock keep their order across it, and that the invalid value is skipped.
func TestClockWraps(t *testing.T) {
	s := newAt("wrap", Seq(math.MaxUint64)-4)
	s.Enter() // observes MaxUint64-4
	var goals []Seq
	for range 4 {
		goals = append(goals, s.Advance())
	}
	want := []Seq{math.MaxUint64 - 2, math.MaxUint64, 1, 3}
	for i := range goals {
		if goals[i] != want[i] {
			t.Fatalf("goals %v, want %v (the clock skips SeqInvalid)", goals, want)
		}
		if s.Poll(goals[i]) {
			t.Fatalf("Poll(%d) met inside a section that observed %d", goals[i], Seq(math.MaxUint64)-4)
		}
	}
	s.Exit()
	if !s.Poll(goals[1]) || Seq(s.rd.Load()) != 3 {
		t.Fatalf("after Exit: Poll(%d) not met or rd = %d, want 3", goals[1], s.rd.Load())
	}
	for _, g := range goals {
		if !s.Poll(g) {
			t.Fatalf("Poll(%d) not met after the wrap", g)
		}
	}
	// A section entered after the wrap holds back a goal after it, and not one before.
	s.Enter()
	g := s.Advance()
	if s.Poll(g) || !s.Poll(goals[3]) {
		t.Fatalf("section at %d: Poll(%d) = %v, Poll(%d) = %v", goals[3], g, s.Poll(g), goals[3], s.Poll(goals[3]))
	}
	s.Exit()
	s.Wait(g)
}
