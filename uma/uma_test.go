package uma

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/softnet-go/softnet/internal/stress"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cluster is a test item: a descriptor whose buffer is carved from one slab-wide []byte,
// as mbuf clusters are.
type cluster struct {
	buf []byte
	gen int
}

const clusterSize = 2048

func carve(items []cluster) {
	store := make([]byte, len(items)*clusterSize)
	for i := range items {
		items[i].buf = store[i*clusterSize : (i+1)*clusterSize : (i+1)*clusterSize]
	}
}

func newClusterZone(t testing.TB, l *Limit, name string, zcfg ZoneConfig[cluster]) *Zone[cluster] {
	t.Helper()
	k, err := NewKeg(l, KegConfig[cluster]{Name: name, ItemSize: clusterSize, SlabInit: carve})
	if err != nil {
		t.Fatal(err)
	}
	if zcfg.Name == "" {
		zcfg.Name = name
	}
	z, err := NewZone(k, zcfg)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// checkAccounting asserts every identity the package promises; the caller guarantees
// that nothing allocates or frees meanwhile.
func checkAccounting[T any](t testing.TB, l *Limit, held map[*Zone[T]]int, kegs ...*Keg[T]) {
	t.Helper()
	var kegBytes int64
	for _, k := range kegs {
		ks := k.Stats()
		var imported int64
		for _, z := range k.zoneList() {
			zs := z.Stats()
			if zs.Imported != zs.InUse+zs.CachedP+zs.CachedZone {
				t.Fatalf("zone %s: imported %d != in use %d + cached per P %d + cached in zone %d",
					zs.Name, zs.Imported, zs.InUse, zs.CachedP, zs.CachedZone)
			}
			if want, ok := held[z]; ok && zs.InUse != int64(want) {
				t.Fatalf("zone %s: in use %d, but the test holds %d", zs.Name, zs.InUse, want)
			}
			if zs.MaxItems > 0 && zs.Imported > zs.MaxItems {
				t.Fatalf("zone %s: imported %d over its max %d", zs.Name, zs.Imported, zs.MaxItems)
			}
			imported += zs.Imported
		}
		if ks.Items != ks.Free+imported {
			t.Fatalf("keg %s: items %d != free %d + imported by zones %d", ks.Name, ks.Items, ks.Free, imported)
		}
		if ks.Bytes != ks.Slabs*ks.SlabBytes || ks.Bytes != ks.Pages*PageSize {
			t.Fatalf("keg %s: bytes %d, slabs %d × %d, pages %d", ks.Name, ks.Bytes, ks.Slabs, ks.SlabBytes, ks.Pages)
		}
		kegBytes += ks.Bytes
	}
	if used := l.Used(); used != kegBytes {
		t.Fatalf("limit: %d bytes charged, but kegs hold %d", used, kegBytes)
	}
}

func TestAllocFreeAccounting(t *testing.T) {
	l, _ := NewLimit(0)
	z := newClusterZone(t, l, "c", ZoneConfig[cluster]{})
	var items []*cluster
	for range 1000 {
		c, err := z.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		if len(c.buf) != clusterSize || cap(c.buf) != clusterSize {
			t.Fatalf("buffer len %d cap %d", len(c.buf), cap(c.buf))
		}
		items = append(items, c)
	}
	seen := map[*byte]bool{}
	for _, c := range items {
		if seen[&c.buf[0]] {
			t.Fatal("two items share a buffer")
		}
		seen[&c.buf[0]] = true
	}
	checkAccounting(t, l, map[*Zone[cluster]]int{z: 1000}, z.Keg())
	for _, c := range items {
		z.Free(c)
	}
	checkAccounting(t, l, map[*Zone[cluster]]int{z: 0}, z.Keg())
	s := z.Stats()
	if s.Requests != 1000 || s.Frees != 1000 || s.InUse != 0 {
		t.Fatalf("stats %+v", s)
	}
	// 1000 items of 2 KiB in 64 KiB slabs of 32: 32 slabs.
	if ks := z.Keg().Stats(); ks.Slabs != 32 || l.Used() != 32*64<<10 {
		t.Fatalf("slabs %d, used %d", ks.Slabs, l.Used())
	}
}

func TestENOBUFSAtTheLimit(t *testing.T) {
	l, _ := NewLimit(128 << 10) // two slabs
	z := newClusterZone(t, l, "c", ZoneConfig[cluster]{})
	var items []*cluster
	for {
		c, err := z.Alloc()
		if err != nil {
			if !errors.Is(err, syscall.ENOBUFS) {
				t.Fatalf("err = %v, want ENOBUFS", err)
			}
			var ue *Error
			if !errors.As(err, &ue) || ue.Zone != "c" {
				t.Fatalf("err = %#v, want an *Error naming the zone", err)
			}
			break
		}
		items = append(items, c)
	}
	if len(items) != 64 {
		t.Fatalf("allocated %d items under a 128 KiB limit, want 64", len(items))
	}
	if s := z.Stats(); s.Failures != 1 {
		t.Fatalf("failures = %d, want 1", s.Failures)
	}
	if s := l.Stats(); s.Refused == 0 || s.Used != 128<<10 {
		t.Fatalf("limit stats %+v", s)
	}
	checkAccounting(t, l, map[*Zone[cluster]]int{z: 64}, z.Keg())
	z.FreeBulk(items)
	checkAccounting(t, l, map[*Zone[cluster]]int{z: 0}, z.Keg())
}

func TestHooks(t *testing.T) {
	l, _ := NewLimit(0)
	var ctor, dtor, init, fini int
	failInit := false
	z := newClusterZone(t, l, "c", ZoneConfig[cluster]{
		Ctor: func(c *cluster) error { ctor++; c.gen++; return nil },
		Dtor: func(*cluster) { dtor++ },
		Init: func(*cluster) error {
			if failInit {
				return errors.New("no")
			}
			init++
			return nil
		},
		Fini:       func(*cluster) { fini++ },
		BucketSize: 4,
	})
	c, err := z.Alloc()
	if err != nil || ctor != 1 || c.gen != 1 {
		t.Fatalf("after Alloc: err %v, ctor %d, gen %d", err, ctor, c.gen)
	}
	if init != 4 { // one bucket was imported
		t.Fatalf("init ran %d times, want 4 (one bucket)", init)
	}
	z.Free(c)
	if dtor != 1 {
		t.Fatalf("dtor ran %d times", dtor)
	}
	reclaimAll(t, l)
	if fini != init {
		t.Fatalf("after Reclaim, fini ran %d times, init %d", fini, init)
	}

	// A failing Init sends the items back to the keg and the allocation fails.
	l2, _ := NewLimit(0)
	z2 := newClusterZone(t, l2, "c2", ZoneConfig[cluster]{Init: func(*cluster) error { return errors.New("no") }})
	if _, err := z2.Alloc(); !errors.Is(err, syscall.ENOBUFS) {
		t.Fatalf("Alloc with failing Init: %v", err)
	}
	checkAccounting(t, l2, map[*Zone[cluster]]int{z2: 0}, z2.Keg())

	// A failing Ctor returns its error and leaves nothing in use.
	ctorErr := errors.New("ctor says no")
	l3, _ := NewLimit(0)
	z3 := newClusterZone(t, l3, "c3", ZoneConfig[cluster]{Ctor: func(*cluster) error { return ctorErr }})
	if _, err := z3.Alloc(); err != ctorErr {
		t.Fatalf("Alloc with failing Ctor: %v", err)
	}
	if n, err := z3.AllocBulk(make([]*cluster, 10)); n != 0 || err != ctorErr {
		t.Fatalf("AllocBulk with failing Ctor: %d, %v", n, err)
	}
	checkAccounting(t, l3, map[*Zone[cluster]]int{z3: 0}, z3.Keg())
}

func TestSecondaryZoneAndMaxItems(t *testing.T) {
	// One P: MaxItems counts the items a zone has taken from its keg, those waiting in
	// per-P buckets included (as FreeBSD's uz_max_items counts what the caches hold), so
	// a goroutine that moved to another P mid-loop would find the zone at its max with
	// an item still in the first P's bucket, and count one short.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	l, _ := NewLimit(0)
	k, _ := NewKeg(l, KegConfig[cluster]{Name: "k", ItemSize: clusterSize, SlabInit: carve})
	a, _ := NewZone(k, ZoneConfig[cluster]{Name: "a"})
	b, _ := NewZone(k, ZoneConfig[cluster]{Name: "b", MaxItems: 10, BucketSize: 4})
	var as, bs []*cluster
	for range 50 {
		c, err := a.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		as = append(as, c)
	}
	for {
		c, err := b.Alloc()
		if err != nil {
			break
		}
		bs = append(bs, c)
	}
	if len(bs) != 10 {
		t.Fatalf("zone with MaxItems 10 gave %d items", len(bs))
	}
	checkAccounting(t, l, map[*Zone[cluster]]int{a: 50, b: 10}, k)
	a.FreeBulk(as)
	b.FreeBulk(bs)
	checkAccounting(t, l, map[*Zone[cluster]]int{a: 0, b: 0}, k)
	// b's items were freed into its caches; it can hand them out again up to its max.
	for range 10 {
		c, err := b.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		defer b.Free(c)
	}
}

// TestRandomConcurrent is the property test: goroutines allocate and free at random, in
// single and bulk calls, over two kegs and three zones under one Limit that is lowered and
// raised between rounds; after every round the accounting identities must hold exactly.
func TestRandomConcurrent(t *testing.T) {
	l, _ := NewLimit(2 << 20)
	k1, _ := NewKeg(l, KegConfig[cluster]{Name: "k1", ItemSize: clusterSize, SlabInit: carve})
	k2, _ := NewKeg(l, KegConfig[cluster]{Name: "k2", ItemSize: 4 * clusterSize, ItemsPerSlab: 4,
		SlabInit: func(items []cluster) {
			for i := range items {
				items[i].buf = make([]byte, 4*clusterSize)
			}
		}})
	z1, _ := NewZone(k1, ZoneConfig[cluster]{Name: "z1"})
	z2, _ := NewZone(k1, ZoneConfig[cluster]{Name: "z2", MaxItems: 100, BucketSize: 3})
	z3, _ := NewZone(k2, ZoneConfig[cluster]{Name: "z3"})
	zones := []*Zone[cluster]{z1, z2, z3}
	const workers = 8
	held := make([][][]*cluster, workers) // worker -> zone -> items
	for w := range held {
		held[w] = make([][]*cluster, len(zones))
	}
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	for round := range rounds {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for range 300 {
					zi := r.IntN(len(zones))
					z, h := zones[zi], &held[w][zi]
					switch op := r.IntN(10); {
					case op < 4:
						if c, err := z.Alloc(); err == nil {
							c.buf[0] = byte(w)
							*h = append(*h, c)
						} else if !errors.Is(err, syscall.ENOBUFS) {
							t.Error(err)
						}
					case op < 6:
						dst := make([]*cluster, r.IntN(40))
						n, err := z.AllocBulk(dst)
						if err != nil && !errors.Is(err, syscall.ENOBUFS) {
							t.Error(err)
						}
						for _, c := range dst[:n] {
							c.buf[0] = byte(w)
						}
						*h = append(*h, dst[:n]...)
					case op < 8 && len(*h) > 0:
						i := r.IntN(len(*h))
						if (*h)[i].buf[0] != byte(w) {
							t.Error("an item changed owner while held")
						}
						z.Free((*h)[i])
						(*h)[i] = (*h)[len(*h)-1]
						*h = (*h)[:len(*h)-1]
					case len(*h) > 0:
						n := r.IntN(len(*h) + 1)
						z.FreeBulk((*h)[len(*h)-n:])
						*h = (*h)[:len(*h)-n]
					}
				}
			}()
		}
		if round%5 == 4 {
			// Lower the limit below use while the workers run; raise it back later.
			l.SetMax(l.Used() / 2)
		}
		wg.Wait()
		want := map[*Zone[cluster]]int{}
		for w := range held {
			for zi, h := range held[w] {
				want[zones[zi]] += len(h)
			}
		}
		checkAccounting(t, l, want, k1, k2)
		if round%5 == 4 {
			l.SetMax(2 << 20)
		}
		if round%7 == 6 {
			l.Reclaim()
			checkAccounting(t, l, want, k1, k2)
		}
	}
	for w := range held {
		for zi, h := range held[w] {
			zones[zi].FreeBulk(h)
		}
	}
	checkAccounting(t, l, map[*Zone[cluster]]int{z1: 0, z2: 0, z3: 0}, k1, k2)
	if p := l.Stats().Peak; p > 2<<20 {
		t.Fatalf("peak use %d over the highest limit ever set", p)
	}
	reclaimAll(t, l)
}

// reclaimAll reclaims until every slab is back: the per-P drain reaches each P with high
// probability per try, so a few tries suffice.
func reclaimAll(t testing.TB, l *Limit) {
	t.Helper()
	for range 100 {
		l.Reclaim()
		if l.Used() == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("after Reclaim, %d bytes still charged", l.Used())
}

func TestLimitLoweredRefusesNewSlabs(t *testing.T) {
	l, _ := NewLimit(1 << 20)
	z := newClusterZone(t, l, "c", ZoneConfig[cluster]{})
	items := make([]*cluster, 256)
	if n, err := z.AllocBulk(items); n != 256 || err != nil {
		t.Fatal(n, err)
	}
	used := l.Used()
	if err := l.SetMax(used / 2); err != nil {
		t.Fatal(err)
	}
	if l.Used() != used {
		t.Fatal("lowering the limit freed memory")
	}
	z.Drain()
	if _, err := z.AllocBulk(make([]*cluster, 64)); !errors.Is(err, syscall.ENOBUFS) {
		// The per-P buckets may hold a few freed items; none were freed, so nothing fits.
		t.Fatalf("allocation over a lowered limit: %v", err)
	}
	if err := l.SetMax(-1); err == nil {
		t.Fatal("SetMax(-1) accepted")
	}
	z.FreeBulk(items)
	reclaimAll(t, l)
}

// TestWaiterWokenByAnotherZone is the scenario the shared Limit exists for: with the Limit full, an allocation
// waiting in zone A is woken when zone B gives a slab back, and completes.
func TestWaiterWokenByAnotherZone(t *testing.T) {
	l, _ := NewLimit(64 << 10) // one slab
	a := newClusterZone(t, l, "a", ZoneConfig[cluster]{})
	b := newClusterZone(t, l, "b", ZoneConfig[cluster]{})
	bs := make([]*cluster, 32)
	if n, err := b.AllocBulk(bs); n != 32 || err != nil {
		t.Fatal(n, err)
	}
	if _, err := a.Alloc(); !errors.Is(err, syscall.ENOBUFS) {
		t.Fatalf("zone a allocated over a full limit: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan *cluster)
	go func() {
		c, err := a.AllocWait(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	waitFor(t, func() bool { return l.Stats().Waiters == 1 })
	select {
	case <-got:
		t.Fatal("the waiter finished while the limit was full")
	case <-time.After(20 * time.Millisecond):
	}
	start := time.Now()
	b.FreeBulk(bs) // frees bypass the caches while someone waits: the slab goes back
	c := <-got
	if d := time.Since(start); d > time.Second {
		t.Errorf("waiter took %v to wake", d)
	}
	if s := a.Stats(); s.Sleeps != 1 || s.InUse != 1 {
		t.Fatalf("zone a stats %+v", s)
	}
	a.Free(c)
	checkAccounting(t, l, map[*Zone[cluster]]int{a: 0, b: 0}, a.Keg(), b.Keg())
	reclaimAll(t, l)
}

func TestRaisedLimitWakesAllWaiters(t *testing.T) {
	l, _ := NewLimit(64 << 10)
	z := newClusterZone(t, l, "c", ZoneConfig[cluster]{})
	held := make([]*cluster, 32)
	z.AllocBulk(held)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 20
	done := make(chan *cluster, n)
	for range n {
		go func() {
			c, err := z.AllocWait(ctx)
			if err != nil {
				t.Error(err)
			}
			done <- c
		}()
	}
	waitFor(t, func() bool { return l.Stats().Waiters == n })
	l.SetMax(1 << 20)
	for range n {
		z.Free(<-done)
	}
	z.FreeBulk(held)
	checkAccounting(t, l, map[*Zone[cluster]]int{z: 0}, z.Keg())
	reclaimAll(t, l)
}

func TestCancelledWaitLeavesNoTrace(t *testing.T) {
	l, _ := NewLimit(64 << 10)
	z := newClusterZone(t, l, "c", ZoneConfig[cluster]{})
	held := make([]*cluster, 32)
	z.AllocBulk(held)
	before := z.Stats()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := z.AllocWait(ctx)
		errc <- err
	}()
	waitFor(t, func() bool { return l.Stats().Waiters == 1 })
	start := time.Now()
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("AllocWait after cancel = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("cancel took %v", d)
	}
	after := z.Stats()
	if ls := l.Stats(); ls.Waiters != 0 || ls.Used != 64<<10 {
		t.Fatalf("limit after cancel: %+v", ls)
	}
	if after.InUse != before.InUse || after.Requests != before.Requests || after.Failures != before.Failures ||
		after.Sleeps != before.Sleeps+1 {
		t.Fatalf("zone stats changed by a cancelled wait beyond one sleep:\n before %+v\n after  %+v", before, after)
	}
	z.FreeBulk(held)
	reclaimAll(t, l)
}

// TestCachedMemoryReachesWaiters: items freed into per-P buckets before anyone waited
// must still reach a waiter in another zone, or it would starve.
func TestCachedMemoryReachesWaiters(t *testing.T) {
	l, _ := NewLimit(128 << 10)
	a := newClusterZone(t, l, "a", ZoneConfig[cluster]{})
	b := newClusterZone(t, l, "b", ZoneConfig[cluster]{})
	bs := make([]*cluster, 64)
	if n, err := b.AllocBulk(bs); n != 64 || err != nil {
		t.Fatal(n, err)
	}
	var wg sync.WaitGroup
	for i := range 8 { // free from several goroutines so items park in several Ps' buckets
		wg.Add(1)
		go func() { defer wg.Done(); b.FreeBulk(bs[i*8 : i*8+8]) }()
	}
	wg.Wait()
	if l.Used() != 128<<10 {
		t.Fatal("the slabs were released without a waiter")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := a.AllocWait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Free(c)
	reclaimAll(t, l)
}

func TestGOMAXPROCSChanges(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	l, _ := NewLimit(0)
	z := newClusterZone(t, l, "c", ZoneConfig[cluster]{BucketSize: 4})
	stop := make(chan struct{})
	var flip sync.WaitGroup
	flip.Add(1)
	go func() {
		defer flip.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			runtime.GOMAXPROCS(1 + i%5)
			time.Sleep(time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	counts := make([]int, 6)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*cluster
			r := rand.New(rand.NewPCG(1, uint64(w)))
			deadline := time.Now().Add(300 * time.Millisecond)
			for time.Now().Before(deadline) {
				if r.IntN(2) == 0 || len(mine) == 0 {
					c, err := z.Alloc()
					if err != nil {
						t.Error(err)
						return
					}
					mine = append(mine, c)
				} else {
					z.Free(mine[len(mine)-1])
					mine = mine[:len(mine)-1]
				}
			}
			counts[w] = len(mine)
			z.FreeBulk(mine)
		}()
	}
	wg.Wait()
	close(stop)
	flip.Wait()
	checkAccounting(t, l, map[*Zone[cluster]]int{z: 0}, z.Keg())
}

func TestFailureInjection(t *testing.T) {
	defer stress.SetFailureRate(0)
	if err := stress.SetFailureRate(1.5); err == nil {
		t.Fatal("rate 1.5 accepted")
	}
	l, _ := NewLimit(0)
	z := newClusterZone(t, l, "c", ZoneConfig[cluster]{})
	stress.SetFailureRate(0.1)
	fails := 0
	var items []*cluster
	for range 10000 {
		c, err := z.Alloc()
		if err != nil {
			if !errors.Is(err, syscall.ENOBUFS) {
				t.Fatal(err)
			}
			fails++
			continue
		}
		items = append(items, c)
	}
	if fails < 800 || fails > 1200 {
		t.Fatalf("%d of 10000 allocations failed at rate 0.1", fails)
	}
	if s := z.Stats(); s.Failures != int64(fails) {
		t.Fatalf("failures counted %d, injected %d", s.Failures, fails)
	}
	// Waiting allocations never fail by injection.
	stress.SetFailureRate(1)
	c, err := z.AllocWait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	z.Free(c)
	stress.SetFailureRate(0)
	z.FreeBulk(items)
	checkAccounting(t, l, map[*Zone[cluster]]int{z: 0}, z.Keg())
}

func TestIdleSlabsAreReclaimedInTime(t *testing.T) {
	l, _ := NewLimit(0)
	k, _ := NewKeg(l, KegConfig[cluster]{Name: "k", ItemSize: clusterSize, SlabInit: carve, IdleTime: 20 * time.Millisecond})
	z, _ := NewZone(k, ZoneConfig[cluster]{Name: "z", BucketSize: 2})
	items := make([]*cluster, 320)
	z.AllocBulk(items)
	z.FreeBulk(items)
	// Without any call, the reclaimer trims the unused bucket cache and frees idle slabs.
	waitFor(t, func() bool { return k.Stats().Slabs <= 1 })
	checkAccounting(t, l, map[*Zone[cluster]]int{z: 0}, k)
}

func TestBadConfig(t *testing.T) {
	if _, err := NewLimit(-1); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("NewLimit(-1) = %v", err)
	}
	l, _ := NewLimit(0)
	if _, err := NewKeg(l, KegConfig[cluster]{}); err == nil {
		t.Fatal("keg without a name accepted")
	}
	if _, err := NewKeg[cluster](nil, KegConfig[cluster]{Name: "x"}); err == nil {
		t.Fatal("keg without a limit accepted")
	}
	if _, err := NewKeg(l, KegConfig[struct{}]{Name: "x"}); err == nil {
		t.Fatal("zero-size items accepted")
	}
	k, _ := NewKeg(l, KegConfig[cluster]{Name: "x"})
	if _, err := NewZone(k, ZoneConfig[cluster]{Name: "z", MaxItems: -1}); err == nil {
		t.Fatal("negative MaxItems accepted")
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestWaitOnZoneWhoseInitFails: a zone whose Init takes an item from another zone (as the
// packet zone attaches a cluster) waits without spinning while that zone is exhausted,
// even though its own keg has free items, and wakes when the other zone frees.
func TestWaitOnZoneWhoseInitFails(t *testing.T) {
	l, _ := NewLimit(0)
	clusters := newClusterZone(t, l, "cl", ZoneConfig[cluster]{})
	type pkt struct{ c *cluster }
	pk, _ := NewKeg(l, KegConfig[pkt]{Name: "mbuf"})
	packets, _ := NewZone(pk, ZoneConfig[pkt]{
		Name:       "packet",
		BucketSize: 1, // so that nothing is cached with a cluster attached
		Init: func(p *pkt) error {
			c, err := clusters.Alloc()
			p.c = c
			return err
		},
		Fini: func(p *pkt) { clusters.Free(p.c); p.c = nil },
	})
	// Carve an mbuf slab so the packet keg has free items, then exhaust the clusters.
	p0, err := packets.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	defer packets.Free(p0)
	l.SetMax(l.Used())
	var held []*cluster
	for {
		c, err := clusters.Alloc()
		if err != nil {
			break
		}
		held = append(held, c)
	}
	start, cpu := time.Now(), cpuTime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := packets.AllocWait(ctx); err != context.DeadlineExceeded {
		t.Fatalf("AllocWait with no cluster = %v", err)
	}
	if wall, used := time.Since(start), cpuTime(t)-cpu; used > wall/2 {
		t.Fatalf("waiting used %v of CPU in %v", used, wall)
	}
	// Now free clusters while a waiter waits: it must wake and get a packet.
	got := make(chan *pkt)
	go func() {
		p, err := packets.AllocWait(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- p
	}()
	waitFor(t, func() bool { return l.Stats().Waiters == 1 })
	clusters.FreeBulk(held)
	select {
	case p := <-got:
		packets.Free(p)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not wake when clusters came back")
	}
	l.SetMax(0)
}
