package mbuf

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/softnet-go/softnet/uma"
)

// emptyLimit gives every free slab back, so that Used is 0 (the tests before have freed
// what they took), and lifts the limit and floor again at the end of the test. With the
// mbufdebug tag an earlier test leaks a pair on purpose, whose slabs stay charged: a test
// that needs the Limit empty is skipped then.
func emptyLimit(t *testing.T) *uma.Limit {
	t.Helper()
	l := Limit()
	floor := l.Floor()
	t.Cleanup(func() {
		l.SetMax(0)
		l.SetFloor(floor)
	})
	for range 100 {
		l.Reclaim()
		if l.Used() == 0 {
			return l
		}
		time.Sleep(time.Millisecond)
	}
	if debugBuild {
		t.Skipf("%d bytes stay charged for the pair TestDebugWriteAfterFree leaks", l.Used())
	}
	t.Fatalf("%d bytes still charged after Reclaim", l.Used())
	return nil
}

// kegStats returns the statistics of the keg named name.
func kegStats(t *testing.T, name string) uma.KegStats {
	t.Helper()
	for _, k := range Stats().Kegs {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no keg %q", name)
	return uma.KegStats{}
}

// TestMinLimitIsWholeSlabs checks MinLimit against the kegs and zones as Stats reports
// them: a bucket of packet-zone pairs and one more mbuf and cluster per worker, in whole
// slabs of the mbuf and cluster kegs.
func TestMinLimitIsWholeSlabs(t *testing.T) {
	s := Stats()
	mk, ck := kegStats(t, "mbuf"), kegStats(t, "mbuf_cluster")
	slabs := func(items int64, k uma.KegStats) int64 {
		return (items + int64(k.ItemsPerSlab) - 1) / int64(k.ItemsPerSlab) * k.SlabBytes
	}
	for _, w := range []int{1, 2, 3, 4, 5, 8, 64} {
		items := int64(w * (s.Packet.BucketSize + 1))
		if got, want := MinLimit(w), slabs(items, mk)+slabs(items, ck); got != want {
			t.Errorf("MinLimit(%d) = %d, want %d", w, got, want)
		}
		if MinLimit(w+1) < MinLimit(w) {
			t.Errorf("MinLimit(%d) = %d < MinLimit(%d) = %d", w+1, MinLimit(w+1), w, MinLimit(w))
		}
	}
	if got, want := MinLimit(1), mk.SlabBytes+ck.SlabBytes; got != want {
		t.Errorf("MinLimit(1) = %d, want a slab of mbufs and a slab of clusters, %d", got, want)
	}
	if MinLimit(0) != MinLimit(runtime.GOMAXPROCS(0)) || MinLimit(-1) != MinLimit(0) {
		t.Errorf("MinLimit(0) = %d, MinLimit(-1) = %d, want MinLimit(GOMAXPROCS) = %d",
			MinLimit(0), MinLimit(-1), MinLimit(runtime.GOMAXPROCS(0)))
	}
	for _, w := range []int{1, 2, 4, 8, 16} {
		t.Logf("MinLimit(%d) = %d (%d KiB)", w, MinLimit(w), MinLimit(w)>>10)
	}
}

// TestLimitRefusesBelowFloor: the mbuf Limit's floor is MinLimit(1), and SetLimit checks
// MinLimit(workers); the floor itself is accepted, a byte less is not.
func TestLimitRefusesBelowFloor(t *testing.T) {
	l := Limit()
	t.Cleanup(func() { l.SetMax(0) })
	floor := MinLimit(1)
	if l.Floor() != floor {
		t.Fatalf("Limit().Floor() = %d, want MinLimit(1) = %d", l.Floor(), floor)
	}
	for _, max := range []int64{1, 4096, floor - 1} {
		err := l.SetMax(max)
		if !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), strconv.FormatInt(floor, 10)) {
			t.Errorf("SetMax(%d) = %v, want EINVAL naming %d", max, err, floor)
		}
		if l.Max() != 0 {
			t.Fatalf("a refused SetMax(%d) changed the limit to %d", max, l.Max())
		}
	}
	if err := l.SetMax(floor); err != nil || l.Max() != floor {
		t.Fatalf("SetMax(MinLimit(1)) = %v, limit %d", err, l.Max())
	}
	for _, w := range []int{1, 2, 4} {
		min := MinLimit(w)
		err := SetLimit(min-1, w)
		if !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), strconv.FormatInt(min, 10)) {
			t.Errorf("SetLimit(%d, %d) = %v, want EINVAL naming %d", min-1, w, err, min)
		}
		if err := SetLimit(min, w); err != nil || l.Max() != min {
			t.Errorf("SetLimit(%d, %d) = %v, limit %d", min, w, err, l.Max())
		}
	}
	if err := SetLimit(0, 4); err != nil || l.Max() != 0 {
		t.Errorf("SetLimit(0, 4) = %v, limit %d", err, l.Max())
	}
}

// TestFloorIsTheLeastThatMovesData shows what the floor stands for. At MinLimit(1) a
// waiting GetCL gets a pair and a waiting Get the mbuf of a split beside it. A page less
// (the floor lifted to allow it) and the pair can never be made: the cluster slab is
// charged, and the mbuf slab never fits beside it. GetCL(Wait) used to wait for that for
// ever, which is what hung spliced; it now fails at once with ENOBUFS.
func TestFloorIsTheLeastThatMovesData(t *testing.T) {
	before := inUse()
	l := emptyLimit(t)
	floor := MinLimit(1)

	if err := l.SetMax(floor); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	p, err := GetCL(Wait(ctx), MTData, MPktHdr)
	if err != nil {
		cancel()
		t.Fatalf("GetCL(Wait) at MinLimit(1) = %v", err)
	}
	m, err := Get(Wait(ctx), MTData)
	cancel()
	if err != nil {
		p.FreeM()
		t.Fatalf("Get(Wait) beside a pair at MinLimit(1) = %v", err)
	}
	m.Free()
	p.FreeM()
	l.SetMax(0)
	emptyLimit(t)

	if err := l.SetFloor(0); err != nil {
		t.Fatal(err)
	}
	if err := l.SetMax(floor - uma.PageSize); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	p, err = GetCL(Wait(ctx), MTData, MPktHdr)
	if err == nil {
		cancel()
		p.FreeM()
		t.Fatalf("GetCL(Wait) made a pair under a limit of %d with %d charged", floor-uma.PageSize, l.Used())
	}
	if !errors.Is(err, syscall.ENOBUFS) || ctx.Err() != nil {
		cancel()
		t.Fatalf("GetCL(Wait) below the floor = %v, want ENOBUFS at once", err)
	}
	cancel()
	l.SetMax(0)
	checkUsage(t, before)
}

// TestWaitingGetCLHoldsNothingAsleep: many GetCL(Wait) at once, under a limit above the
// floor but short of two cluster slabs and an mbuf slab, while the test holds every
// cluster of a slab and more. Once the test lets go, every one must get its pair. A waiter
// that slept on the mbuf zone holding a cluster kept that cluster's slab charged; two such
// waiters with clusters of two slabs left no room for the mbuf slab both waited for, and
// every waiter after them queued behind them for ever.
func TestWaitingGetCLHoldsNothingAsleep(t *testing.T) {
	before := inUse()
	l := emptyLimit(t)
	ck, mk := kegStats(t, "mbuf_cluster"), kegStats(t, "mbuf")
	max := 2*ck.SlabBytes + mk.SlabBytes - uma.PageSize // two cluster slabs, or one and an mbuf slab
	if max < MinLimit(1) {
		t.Fatalf("limit %d below the floor %d", max, MinLimit(1))
	}
	if err := l.SetMax(max); err != nil {
		t.Fatal(err)
	}
	// Hold a cluster slab and part of a second; no mbuf slab fits beside them.
	var held []*cluster
	for range ck.ItemsPerSlab + ck.ItemsPerSlab/2 {
		c, err := clZones[extCluster].Alloc()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}

	const waiters = 48
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for range waiters {
		wg.Go(func() {
			m, err := GetCL(Wait(ctx), MTData, MPktHdr)
			if err != nil {
				errs <- err
				return
			}
			time.Sleep(time.Millisecond) // hold it a moment, as a flow would
			m.FreeM()
		})
	}
	for l.Stats().Waiters < 4 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	for _, c := range held {
		clZones[extCluster].Free(c)
		runtime.Gosched() // let wake-ups run between the frees
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		n++
		if n == 1 {
			t.Errorf("GetCL(Wait): %v (limit %d, %d charged, %d waiting)", err, max, l.Used(), l.Stats().Waiters)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d waiting GetCL never got a pair", n, waiters)
	}
	l.SetMax(0)
	checkUsage(t, before)
}

// TestWaitForAPairThatCannotFit: at the floor a 64 KiB cluster's slab does not fit beside
// a slab of mbufs, so a waiting GetJCL for one could never be satisfied: it fails at once
// with ENOBUFS, rather than sleep holding the cluster (which would starve everyone else)
// or take turns at the two halves. With room for both slabs it gets its pair.
func TestWaitForAPairThatCannotFit(t *testing.T) {
	before := inUse()
	l := emptyLimit(t)
	j64, mk := kegStats(t, "mbuf_jumbo_64k"), kegStats(t, "mbuf")
	if j64.SlabBytes+mk.SlabBytes <= MinLimit(1) {
		t.Skipf("a 64 KiB cluster slab (%d) and an mbuf slab (%d) fit under the floor %d", j64.SlabBytes, mk.SlabBytes, MinLimit(1))
	}
	if err := l.SetMax(MinLimit(1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	m, err := GetJCL(Wait(ctx), MTData, 0, MJum64Bytes)
	if err == nil {
		m.FreeM()
		t.Fatal("GetJCL(Wait, 64 KiB) made a pair whose slabs do not fit under the limit")
	}
	if !errors.Is(err, syscall.ENOBUFS) || time.Since(start) > 5*time.Second {
		t.Fatalf("GetJCL(Wait, 64 KiB) under %d: %v after %v, want ENOBUFS at once", l.Max(), err, time.Since(start))
	}
	if err := l.SetMax(j64.SlabBytes + mk.SlabBytes); err != nil {
		t.Fatal(err)
	}
	if m, err = GetJCL(Wait(ctx), MTData, 0, MJum64Bytes); err != nil {
		t.Fatalf("GetJCL(Wait, 64 KiB) with room for both slabs: %v", err)
	}
	m.FreeM()
	l.SetMax(0)
	checkUsage(t, before)
}
