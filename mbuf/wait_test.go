package mbuf

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the process's user+system CPU time.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// exhaustClusters holds packet-zone pairs (GetCL) until the Limit refuses more and a
// waiting GetCL times out, with mbufs still free in the mbuf keg. It returns a func that
// frees everything and lifts the limit.
func exhaustClusters(t *testing.T) func() {
	l := Limit()
	m, err := Get(DontWait, MTData) // carves an mbuf slab: its other items stay free in the keg
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		p, err := GetCL(DontWait, MTData, 0)
		if err != nil {
			t.Fatal(err)
		}
		p.next, m.next = m.next, p // not Cat: it would absorb the empty mbuf
	}
	if err := l.SetMax(l.Used()); err != nil {
		t.Fatal(err)
	}
	for {
		// Waiting allocations drain every cache, the packet zone's pairs included.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		p, err := GetCL(Wait(ctx), MTData, 0)
		cancel()
		if err != nil {
			break
		}
		p.next, m.next = m.next, p // not Cat: it would absorb the empty mbuf
	}
	return func() {
		m.FreeM()
		l.SetMax(0)
	}
}

// TestWaitingGetCLDoesNotSpin: GetCL with Wait, with clusters exhausted and mbufs free,
// must sleep, not burn a CPU.
func TestWaitingGetCLDoesNotSpin(t *testing.T) {
	before := inUse()
	release := exhaustClusters(t)
	var parked *Mbuf
	for {
		start, cpu := time.Now(), cpuTime(t)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		p, err := GetCL(Wait(ctx), MTData, MPktHdr)
		cancel()
		if err == nil { // a pair was still parked in a cache nobody had drained
			p.next, parked = parked, p
			continue
		}
		wall, used := time.Since(start), cpuTime(t)-cpu
		parked.FreeM()
		release()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("GetCL(Wait) with no cluster = %v", err)
		}
		if used > wall/2 {
			t.Fatalf("GetCL(Wait) used %v of CPU in %v of waiting", used, wall)
		}
		break
	}
	checkUsage(t, before)
}

// exhaustClusterZone holds 2 KiB clusters straight from their zone, and whatever pairs
// the packet zone still caches, until a waiting allocation times out, while mbufs stay
// free in the mbuf keg: the packet zone then has items whose Init must fail.
func exhaustClusterZone(t *testing.T) func() {
	l := Limit()
	var held []*cluster
	var pairs []*Mbuf
	m, err := Get(DontWait, MTData) // carves an mbuf slab: its other items stay free in the keg
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		c, err := clZones[extCluster].Alloc()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	if err := l.SetMax(l.Used()); err != nil {
		t.Fatal(err)
	}
	for {
		// Waiting allocations drain every cache, the packet zone's pairs included.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		c, err := clZones[extCluster].AllocWait(ctx)
		cancel()
		for {
			p, err := packetZone.Alloc()
			if err != nil {
				break
			}
			pairs = append(pairs, p)
		}
		if err != nil {
			break
		}
		held = append(held, c)
	}
	return func() {
		for _, c := range held {
			clZones[extCluster].Free(c)
		}
		for _, p := range pairs {
			packetZone.Free(p)
		}
		m.Free()
		l.SetMax(0)
	}
}

// TestPacketZoneAllocWaitSleeps is the regression test of a uma bug these tests found
// (fixed in uma 7defb31): Zone.AllocWait on a zone whose Init fails — the packet zone,
// when no cluster can be had while mbufs are free — neither slept nor honoured its
// context: the wake-up test counted the keg's free items as ready, every one failed
// Init, and AllocWait looped, burning a CPU, until memory came back.
func TestPacketZoneAllocWaitSleeps(t *testing.T) {
	before := inUse()
	release := exhaustClusterZone(t)
	start, cpu := time.Now(), cpuTime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		m, err := packetZone.AllocWait(ctx)
		if err == nil {
			packetZone.Free(m)
		}
		done <- err
	}()
	select {
	case err := <-done:
		wall, used := time.Since(start), cpuTime(t)-cpu
		release()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("packet zone AllocWait with no cluster = %v", err)
		}
		if used > wall/2 {
			t.Errorf("uma: AllocWait of a zone whose Init fails used %v of CPU in %v of waiting", used, wall)
		}
	case <-time.After(time.Second):
		t.Errorf("uma: AllocWait of a zone whose Init fails is still running 1s after its 100ms "+
			"context ended, having used %v of CPU in %v", cpuTime(t)-cpu, time.Since(start))
		release() // lets the stuck AllocWait succeed, so its goroutine ends
		<-done
	}
	checkUsage(t, before)
}
