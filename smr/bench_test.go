package smr

import (
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkEnterExit is the cost of an empty read section.
func BenchmarkEnterExit(b *testing.B) {
	s := New("bench")
	b.ReportAllocs()
	for b.Loop() {
		s.Enter()
		s.Exit()
	}
}

// BenchmarkEnterExitParallel runs empty sections on every P; each P writes only its own
// slot, so it should scale.
func BenchmarkEnterExitParallel(b *testing.B) {
	s := New("bench")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Enter()
			s.Exit()
		}
	})
}

// BenchmarkEnterExitWithAdvancingWriter is a section whose Enter must reload a write
// clock that another goroutine keeps advancing: the cost of a shared line that moves.
func BenchmarkEnterExitWithAdvancingWriter(b *testing.B) {
	needProcs(b, 2)
	s := New("bench")
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			s.Advance()
		}
	})
	b.ReportAllocs()
	for b.Loop() {
		s.Enter()
		s.Exit()
	}
	stop.Store(true)
	wg.Wait()
}

// BenchmarkRWMutexRLock is a baseline: the read side of a sync.RWMutex on every P.
func BenchmarkRWMutexRLockParallel(b *testing.B) {
	var mu sync.RWMutex
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.RLock()
			mu.RUnlock() //lint:ignore SA2001 an empty critical section is what is measured
		}
	})
}

// BenchmarkAdvance is one step of the write clock.
func BenchmarkAdvance(b *testing.B) {
	s := New("bench")
	for b.Loop() {
		s.Advance()
	}
}

// BenchmarkAdvanceParallel is Advance from every P at once, the contention a deferred
// advance (smr_advance_deferred) would avoid.
func BenchmarkAdvanceParallel(b *testing.B) {
	s := New("bench")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Advance()
		}
	})
}

// BenchmarkAdvancePoll is a writer freeing one item and polling its goal at once, with no
// reader about: every Poll scans the slots.
func BenchmarkAdvancePoll(b *testing.B) {
	s := New("bench")
	b.ReportAllocs()
	for b.Loop() {
		if !s.Poll(s.Advance()) {
			b.Fatal("goal not met with no reader")
		}
	}
}

// BenchmarkPollMet is a poll of a goal already met: the cached read clock answers.
func BenchmarkPollMet(b *testing.B) {
	s := New("bench")
	goal := s.Advance()
	s.Wait(goal)
	b.ReportAllocs()
	for b.Loop() {
		if !s.Poll(goal) {
			b.Fatal("goal not met")
		}
	}
}

// BenchmarkSynchronize is Advance then Wait with no reader about.
func BenchmarkSynchronize(b *testing.B) {
	s := New("bench")
	b.ReportAllocs()
	for b.Loop() {
		s.Synchronize()
	}
}
