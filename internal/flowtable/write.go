package flowtable

import (
	"net/netip"
	"sync/atomic"
)

// Insert stores v under key, the owner's insert or replace. If key was present, its value
// is replaced in place (readers see the old value or the new one) and returned with
// replaced set; the old value may still be in a reader's hands (see the package
// documentation). v must not be nil.
//
// A new key needs a node from the table's zone: at the memory limit Insert fails with an
// error wrapping syscall.ENOBUFS and changes nothing. When the load factor passes one,
// Insert grows the table; a growth that finds no memory is abandoned (the table stays
// correct, only more loaded) and counted in Stats.FailedRebuilds.
//
// Insert must not be called inside a read section of t.SMR().
func (t *Table[V]) Insert(key netip.AddrPort, v *V) (old *V, replaced bool, err error) {
	return t.insert(key, v, true)
}

// LoadOrInsert returns the value stored under key if there is one (loaded set), and
// otherwise stores v under key and returns it: an insert that never replaces, for
// writers on several goroutines that each found key absent and raced to add it (the
// mutex serialises them, and all but the first get the first one's value). Its failure
// and growth are Insert's. v must not be nil.
//
// LoadOrInsert must not be called inside a read section of t.SMR().
func (t *Table[V]) LoadOrInsert(key netip.AddrPort, v *V) (actual *V, loaded bool, err error) {
	old, found, err := t.insert(key, v, false)
	if found {
		return old, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, false, nil
}

// insert is Insert and LoadOrInsert: it stores v under a new key, and under a present
// key only if replace is set. It returns the present key's value and true, or nil and
// false with the error of allocating a node.
func (t *Table[V]) insert(key netip.AddrPort, v *V, replace bool) (*V, bool, error) {
	if v == nil {
		panic("flowtable: Insert of a nil value")
	}
	h := hashKey(t.seed, key)
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.cur.Load()
	head := &a.heads[h&a.mask]
	for n := head.Load(); n != nil; n = n.next.Load() {
		if n.hash == h && n.key == key {
			if !replace {
				return n.val.Load(), true, nil
			}
			return n.val.Swap(v), true, nil
		}
	}
	n, err := t.zone.Alloc()
	if err != nil {
		return nil, false, err
	}
	n.hash, n.key = h, key
	n.val.Store(v)
	n.next.Store(head.Load())
	head.Store(n) // publishes the node, and the fields above with it
	if c := t.count.Add(1); c > t.growAt {
		t.resize(2 * len(a.heads))
	}
	return nil, false, nil
}

// Delete removes key and returns its value, the owner's delete. A lookup that begins after
// Delete returns does not find key; the node goes back to the zone, which reuses it only
// after every section that could have seen it has ended. The value may still be in a
// reader's hands (see the package documentation).
//
// Delete must not be called inside a read section of t.SMR().
func (t *Table[V]) Delete(key netip.AddrPort) (*V, bool) {
	h := hashKey(t.seed, key)
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.cur.Load()
	for prev := &a.heads[h&a.mask]; ; {
		n := prev.Load()
		if n == nil {
			return nil, false
		}
		if n.hash == h && n.key == key {
			v := t.unlink(prev, n)
			t.maybeShrink()
			return v, true
		}
		prev = &n.next
	}
}

// Expire deletes every entry for which expired returns true and returns how many it
// deleted: the owner's idle timer, which knows from the flows themselves which are idle.
// expired runs on the owner's goroutine with the writers' mutex held, outside any read
// section; it may close the flow it expires, and call Lookup and Range, but not Insert,
// Delete or Expire. Each entry is offered once, in no particular order.
//
// Expire must not be called inside a read section of t.SMR().
func (t *Table[V]) Expire(expired func(key netip.AddrPort, v *V) bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.cur.Load()
	deleted := 0
	for i := range a.heads {
		for prev := &a.heads[i]; ; {
			n := prev.Load()
			if n == nil {
				break
			}
			if expired(n.key, n.val.Load()) {
				t.unlink(prev, n) // prev now points at n's successor
				deleted++
				continue
			}
			prev = &n.next
		}
	}
	t.maybeShrink()
	return deleted
}

// unlink removes n, whose predecessor's link is prev, and frees it to the zone. Readers
// standing on n still see n.next, so they walk on to the rest of the chain.
//
// The value is cleared, so that a node waiting in the zone's caches, which may be for a
// long time, does not keep a closed flow from the garbage collector. A reader that
// reaches n from now on finds no value and reports the key absent, which is a right
// answer for a lookup that overlaps the delete. Called with t.mu held.
func (t *Table[V]) unlink(prev *atomic.Pointer[node[V]], n *node[V]) *V {
	prev.Store(n.next.Load())
	v := n.val.Swap(nil)
	t.zone.Free(n)
	t.count.Add(-1)
	return v
}

// maybeShrink rebuilds a table that has emptied to an eighth of its maximum load into
// one loaded about half, never below the size New was asked for. Called with t.mu held.
func (t *Table[V]) maybeShrink() {
	if c := t.count.Load(); c < t.shrinkAt {
		t.resize(max(t.minBuckets, roundUp(int(2*c)/maxLoad)))
	}
}
