package mbuf

import (
	"context"
	"errors"
	"os"
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

// exhaustClusters holds 2 KiB clusters until the Limit refuses more, with mbufs still
// free in the mbuf keg. It returns a func that frees everything and lifts the limit.
func exhaustClusters(t *testing.T) func() {
	l := Limit()
	var held []*cluster
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
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		c, err := clZones[extCluster].AllocWait(ctx)
		cancel()
		if err != nil {
			break
		}
		held = append(held, c)
	}
	return func() {
		for _, c := range held {
			clZones[extCluster].Free(c)
		}
		m.Free()
		l.SetMax(0)
	}
}

// TestWaitingGetCLDoesNotSpin: GetCL with Wait, with clusters exhausted and mbufs free,
// must sleep, not burn a CPU.
func TestWaitingGetCLDoesNotSpin(t *testing.T) {
	before := inUse()
	release := exhaustClusters(t)
	start, cpu := time.Now(), cpuTime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := GetCL(Wait(ctx), MTData, MPktHdr); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetCL(Wait) with no cluster = %v", err)
	}
	wall, used := time.Since(start), cpuTime(t)-cpu
	release()
	if used > wall/2 {
		t.Fatalf("GetCL(Wait) used %v of CPU in %v of waiting", used, wall)
	}
	checkUsage(t, before)
}

// TestUMAAllocWaitInitFailure shows a bug in uma: Zone.AllocWait on a zone whose Init
// fails (the packet zone, when no cluster can be had while mbufs are free) neither sleeps
// nor honours its context. Limit.wait counts the keg's free items as ready (itemsReady)
// and returns before it looks at the context, but every one of those items fails Init,
// so AllocWait loops — burning a CPU and draining every cache once a millisecond — until
// memory comes back, whatever the context says. GetCL avoids it by waiting on the mbuf
// and cluster zones instead (TestWaitingGetCLDoesNotSpin). Run with MBUF_UMA_BUGS=1.
func TestUMAAllocWaitInitFailure(t *testing.T) {
	if os.Getenv("MBUF_UMA_BUGS") == "" {
		t.Skip("known uma bug; set MBUF_UMA_BUGS=1 to run")
	}
	before := inUse()
	release := exhaustClusters(t)
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
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("packet zone AllocWait with no cluster = %v", err)
		}
	case <-time.After(time.Second):
		t.Errorf("uma: AllocWait of a zone whose Init fails is still running 1s after its 100ms "+
			"context ended, having used %v of CPU in %v", cpuTime(t)-cpu, time.Since(start))
	}
	release() // lets a stuck AllocWait succeed, so its goroutine ends
	<-done
	checkUsage(t, before)
}
