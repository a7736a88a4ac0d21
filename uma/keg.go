package uma

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"time"
	"unsafe"
)

// PageSize is the unit slabs are counted in: the system page size.
var PageSize = int64(os.Getpagesize())

// KegConfig describes a keg. Name and Limit are required.
type KegConfig[T any] struct {
	// Name names the keg in statistics and errors.
	Name string
	// ItemSize is the bytes one item stands for: what its slab charges the Limit. It
	// defaults to the size of T; a cluster keg sets it to the buffer size plus the size of
	// the descriptor, so that the Limit counts the memory really held.
	ItemSize int64
	// ItemsPerSlab is how many items one slab carves; it defaults to enough for 64 KiB
	// (at least 1), so a slab of 2 KiB clusters holds 32 of them.
	ItemsPerSlab int
	// SlabInit is uk_init for a whole slab: it runs once on every new slab's items, before
	// any is handed out, and is where a keg of descriptors carves their backing store (one
	// large []byte cut into buffers). It must not fail.
	SlabInit func(items []T)
	// IdleTime is how long a fully free slab stays before the reclaimer gives it back to
	// the Go heap; it defaults to 5 s. While allocations wait on the Limit, free slabs are
	// given back at once.
	IdleTime time.Duration
}

// A Keg carves slabs into items of type T and hands them to the zones built on it, as a
// FreeBSD UMA keg does. It charges its Limit a whole slab at a time.
type Keg[T any] struct {
	name      string
	limit     *Limit
	itemSize  int64
	perSlab   int
	slabBytes int64
	slabInit  func([]T)
	idleTime  time.Duration

	mu      sync.Mutex
	slabs   []*slab[T] // every slab, sorted by address, for vtoslab
	partial slabList[T]
	idle    slabList[T] // fully free
	free    int         // free items in the keg
	zones   []*Zone[T]
}

// A slab is a backing array of items and the stack of its free ones.
type slab[T any] struct {
	items      []T
	base, end  uintptr
	free       []*T
	idleSince  time.Time
	prev, next *slab[T]
	list       *slabList[T]
}

type slabList[T any] struct {
	head *slab[T]
	n    int
}

func (l *slabList[T]) push(s *slab[T]) {
	s.prev, s.next, s.list = nil, l.head, l
	if l.head != nil {
		l.head.prev = s
	}
	l.head = s
	l.n++
}

func (l *slabList[T]) remove(s *slab[T]) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	}
	s.prev, s.next, s.list = nil, nil, nil
	l.n--
}

// NewKeg returns a keg under the Limit l.
func NewKeg[T any](l *Limit, cfg KegConfig[T]) (*Keg[T], error) {
	if l == nil {
		return nil, errors.New("uma: NewKeg: nil Limit")
	}
	if cfg.Name == "" {
		return nil, errors.New("uma: NewKeg: empty Name")
	}
	size := int64(sizeOf[T]())
	if size == 0 {
		return nil, fmt.Errorf("uma: keg %s: zero-size item type", cfg.Name)
	}
	if cfg.ItemSize < 0 || cfg.ItemsPerSlab < 0 || cfg.IdleTime < 0 {
		return nil, fmt.Errorf("uma: keg %s: negative ItemSize, ItemsPerSlab or IdleTime", cfg.Name)
	}
	k := &Keg[T]{
		name:     cfg.Name,
		limit:    l,
		itemSize: cfg.ItemSize,
		perSlab:  cfg.ItemsPerSlab,
		slabInit: cfg.SlabInit,
		idleTime: cfg.IdleTime,
	}
	if k.itemSize == 0 {
		k.itemSize = size
	}
	if k.perSlab == 0 {
		k.perSlab = int(max(1, (64<<10)/k.itemSize))
	}
	if k.idleTime == 0 {
		k.idleTime = 5 * time.Second
	}
	k.slabBytes = (int64(k.perSlab)*k.itemSize + PageSize - 1) / PageSize * PageSize
	l.register(k)
	return k, nil
}

// Name returns the keg's name.
func (k *Keg[T]) Name() string { return k.name }

// Limit returns the Limit the keg charges.
func (k *Keg[T]) Limit() *Limit { return k.limit }

// SlabBytes returns what one slab of the keg charges the Limit.
func (k *Keg[T]) SlabBytes() int64 { return k.slabBytes }

// ItemsPerSlab returns how many items one slab of the keg carves.
func (k *Keg[T]) ItemsPerSlab() int { return k.perSlab }

// BytesFor returns what the keg charges the Limit to hold items items at once: whole
// slabs, as many as the items fill. It is the least the Limit must allow for that many
// to be out together; 0 items need nothing.
func (k *Keg[T]) BytesFor(items int64) int64 {
	if items <= 0 {
		return 0
	}
	return (items + int64(k.perSlab) - 1) / int64(k.perSlab) * k.slabBytes
}

// alloc moves up to len(dst) items from the keg into dst and returns how many: partial
// slabs first, then idle ones, then a new slab if the Limit has room. The caller holds no
// keg lock.
func (k *Keg[T]) alloc(dst []*T) int {
	k.mu.Lock()
	n := 0
	for n < len(dst) {
		s := k.partial.head
		if s == nil {
			s = k.idle.head
		}
		if s == nil {
			if s = k.newSlab(); s == nil {
				break
			}
		}
		for n < len(dst) && len(s.free) > 0 {
			dst[n] = s.free[len(s.free)-1]
			s.free = s.free[:len(s.free)-1]
			k.free--
			n++
		}
		k.file(s)
	}
	k.mu.Unlock()
	return n
}

// newSlab charges the Limit and carves a slab; nil when the Limit is full. Called with
// k.mu held; the slab is filed on the idle list.
func (k *Keg[T]) newSlab() *slab[T] {
	if !k.limit.charge(k.slabBytes) {
		return nil
	}
	s := &slab[T]{items: make([]T, k.perSlab), free: make([]*T, k.perSlab)}
	if k.slabInit != nil {
		k.slabInit(s.items)
	}
	for i := range s.items {
		s.free[k.perSlab-1-i] = &s.items[i] // first item on top
	}
	s.base = uintptr(unsafe.Pointer(&s.items[0]))
	s.end = s.base + uintptr(k.perSlab)*sizeOf[T]()
	i := sort.Search(len(k.slabs), func(i int) bool { return k.slabs[i].base > s.base })
	k.slabs = slices.Insert(k.slabs, i, s)
	k.free += k.perSlab
	k.idle.push(s)
	return s
}

// file puts s on the list its free count calls for: full slabs are on no list.
func (k *Keg[T]) file(s *slab[T]) {
	want := &k.partial
	switch len(s.free) {
	case 0:
		want = nil
	case k.perSlab:
		want = &k.idle
	}
	if s.list == want {
		return
	}
	if s.list != nil {
		s.list.remove(s)
	}
	if want != nil {
		want.push(s)
		if want == &k.idle {
			s.idleSince = time.Now()
		}
	}
}

// vtoslab finds the slab an item was carved from.
func (k *Keg[T]) vtoslab(it *T) *slab[T] {
	p := uintptr(unsafe.Pointer(it))
	i := sort.Search(len(k.slabs), func(i int) bool { return k.slabs[i].end > p })
	if i == len(k.slabs) || p < k.slabs[i].base {
		panic(fmt.Sprintf("uma: keg %s: freeing an item that is not from this keg", k.name))
	}
	return k.slabs[i]
}

// release takes items back into their slabs. When the Limit has waiters, fully free slabs
// go back at once, so their pages can serve any zone; otherwise they wait for the
// reclaimer. It wakes waiters either way.
func (k *Keg[T]) release(items []*T) {
	k.put(items, true)
}

// releaseQuiet takes back items that were free a moment ago (a failed zone Init): no
// memory became available, so no waiter is woken.
func (k *Keg[T]) releaseQuiet(items []*T) {
	k.put(items, false)
}

func (k *Keg[T]) put(items []*T, wake bool) {
	if len(items) == 0 {
		return
	}
	urgent := k.limit.waiting()
	var freed int64
	idle := false
	k.mu.Lock()
	for _, it := range items {
		s := k.vtoslab(it)
		if len(s.free) == k.perSlab {
			k.mu.Unlock()
			panic(fmt.Sprintf("uma: keg %s: double free", k.name))
		}
		s.free = append(s.free, it)
		k.free++
		k.file(s)
		if len(s.free) == k.perSlab {
			if urgent {
				freed += k.dropSlab(s)
			} else {
				idle = true
			}
		}
	}
	k.mu.Unlock()
	if freed > 0 {
		k.limit.uncharge(freed)
	} else if wake {
		k.limit.kick()
	}
	if idle {
		k.limit.armReclaim(k.idleTime)
	}
}

// dropSlab forgets an idle slab, leaving it to the garbage collector, and returns the bytes
// to uncharge. Called with k.mu held.
func (k *Keg[T]) dropSlab(s *slab[T]) int64 {
	k.idle.remove(s)
	i := sort.Search(len(k.slabs), func(i int) bool { return k.slabs[i].base >= s.base })
	k.slabs = slices.Delete(k.slabs, i, i+1) // clears the vacated slot for the collector
	k.free -= k.perSlab
	return k.slabBytes
}

// drainIdle gives back every idle slab, or those idle since before cutoff.
func (k *Keg[T]) drainIdle(cutoff time.Time, all bool) (freed int64, next time.Duration) {
	k.mu.Lock()
	for s := k.idle.head; s != nil; {
		nx := s.next
		if all || !s.idleSince.After(cutoff) {
			freed += k.dropSlab(s)
		} else if d := s.idleSince.Sub(cutoff); next == 0 || d < next {
			next = d
		}
		s = nx
	}
	k.mu.Unlock()
	return freed, next
}

func (k *Keg[T]) zoneList() []*Zone[T] {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*Zone[T](nil), k.zones...)
}

// drain empties the bucket caches of the keg's zones into the keg and, if asked, gives
// every fully free slab back.
func (k *Keg[T]) drain(releaseSlabs bool) {
	for _, z := range k.zoneList() {
		z.Drain()
	}
	if releaseSlabs {
		if freed, _ := k.drainIdle(time.Time{}, true); freed > 0 {
			k.limit.uncharge(freed)
		}
	}
}

// caches returns the zones on the keg as drainCPUs sees them.
func (k *Keg[T]) caches() []pcacheOwner {
	zones := k.zoneList()
	out := make([]pcacheOwner, len(zones))
	for i, z := range zones {
		out[i] = z
	}
	return out
}

func (k *Keg[T]) reclaimIdle(now time.Time) time.Duration {
	cached := false
	for _, z := range k.zoneList() {
		cached = z.trim() || cached
	}
	freed, next := k.drainIdle(now.Add(-k.idleTime), false)
	if freed > 0 {
		k.limit.uncharge(freed)
	}
	if next > 0 {
		next += time.Millisecond
	}
	if cached && (next == 0 || next > k.idleTime) {
		next = k.idleTime
	}
	return next
}

// KegStats is a snapshot of a keg. Items == Free + the Imported of its zones, and
// Bytes == Slabs × SlabBytes == Pages × PageSize, at every quiescent moment.
type KegStats struct {
	Name         string
	ItemSize     int64 // bytes each item stands for
	ItemsPerSlab int
	SlabBytes    int64
	Slabs        int64 // slabs held (idle ones included)
	IdleSlabs    int64 // slabs with every item free
	Pages        int64 // Slabs × SlabBytes / PageSize
	Bytes        int64 // bytes charged to the Limit
	Items        int64 // items carved: Slabs × ItemsPerSlab
	Free         int64 // items free in the keg
}

// Stats returns a snapshot of the keg.
func (k *Keg[T]) Stats() KegStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	slabs := int64(len(k.slabs))
	return KegStats{
		Name:         k.name,
		ItemSize:     k.itemSize,
		ItemsPerSlab: k.perSlab,
		SlabBytes:    k.slabBytes,
		Slabs:        slabs,
		IdleSlabs:    int64(k.idle.n),
		Pages:        slabs * k.slabBytes / PageSize,
		Bytes:        slabs * k.slabBytes,
		Items:        slabs * int64(k.perSlab),
		Free:         int64(k.free),
	}
}
