package flowtable

// resize rebuilds the table with size buckets. Called with t.mu held.
//
// The nodes of the current array are never relinked: a reader walking a chain while its
// nodes moved to other chains could skip entries. Instead every entry gets a new node in
// a new array, the array is published with one atomic store, and only then are the old
// nodes freed to the zone, where they wait until no reader can still be walking the old
// array. A reader thus sees the whole old table or the whole new one.
//
// The rebuild needs a second node per entry for a moment. If the zone cannot supply them
// the rebuild is abandoned: the new nodes go back, the old array stays (correct, only
// more or less loaded than wished), and the next attempt waits until the count has grown
// by another quarter of the buckets, or halved, so that a table at its memory limit does
// not pay a failed rebuild on every insert or delete.
func (t *Table[V]) resize(size int) {
	old := t.cur.Load()
	if size == len(old.heads) {
		t.install(old)
		return
	}
	a := newArray[V](size)
	for i := range old.heads {
		for o := old.heads[i].Load(); o != nil; o = o.next.Load() {
			n, err := t.zone.Alloc()
			if err != nil {
				t.freeAll(a)
				t.failedRebuilds.Add(1)
				if c := t.count.Load(); size > len(old.heads) {
					t.growAt = c + int64(max(1, len(old.heads)/4))
				} else {
					t.shrinkAt = c / 2
				}
				return
			}
			n.hash, n.key = o.hash, o.key
			n.val.Store(o.val.Load())
			head := &a.heads[o.hash&a.mask]
			n.next.Store(head.Load())
			head.Store(n)
		}
	}
	if size > len(old.heads) {
		t.grows.Add(1)
	} else {
		t.shrinks.Add(1)
	}
	t.install(a) // readers that load the array from now on walk the new nodes only
	t.freeAll(old)
}

// maxLoad is the load factor past which the table grows: entries per bucket. Lookups
// are fastest with short chains, and a bucket costs only a pointer. Tests raise it, to
// give readers long chains to walk while the owner unlinks nodes from them.
var maxLoad = 1

// install publishes a as the current array and sets the thresholds of the next resize:
// grow past maxLoad, shrink below an eighth of it (unless a is as small as allowed).
// Called with t.mu held, or by New.
func (t *Table[V]) install(a *array[V]) {
	t.cur.Store(a)
	t.growAt = int64(len(a.heads) * maxLoad)
	t.shrinkAt = -1
	if len(a.heads) > t.minBuckets {
		t.shrinkAt = int64(len(a.heads) * maxLoad / 8)
	}
}

// freeAll frees every node of a, an array readers can no longer load (replaced, or never
// published), to the zone, where each waits out its grace period. Called with t.mu held.
func (t *Table[V]) freeAll(a *array[V]) {
	for i := range a.heads {
		for n := a.heads[i].Load(); n != nil; {
			next := n.next.Load()
			t.zone.Free(n)
			n = next
		}
	}
}
