package flowtable

import (
	"math/bits"
	"net/netip"
)

// Range's batches: a read section copies at most about rangeBatch entries, and looks at
// no more than rangeBuckets buckets, so that sections stay short however large or sparse
// the table is.
const (
	rangeBatch   = 64
	rangeBuckets = 256
)

type entry[V any] struct {
	key netip.AddrPort
	val *V
}

// Range calls fn for the entries of the table, lock-free, until fn returns false. It is
// for the admin endpoint: it never blocks the owner, and the owner may insert, delete and
// grow the table meanwhile. Range must not be called inside a read section of t.SMR().
//
// Range copies a batch of entries inside a short read section, leaves it, and then calls
// fn on the batch, so fn runs outside any section: it may block, allocate, and call the
// table's methods. What it visits:
//
//   - every entry present from the start of the call to its end, exactly once;
//   - entries inserted or deleted during the call, at most once each (or not at all);
//   - each with a value the key had at some moment during the call.
//
// It is not a snapshot: two entries visited may never have been in the table together.
//
// How: the cursor is a position in the hash space read with its bits reversed, the
// order in which a power-of-two table splits its buckets (Redis's SCAN cursor). A bucket
// of a table of 2^k buckets holds exactly the hashes of one interval of that space, so
// "every entry whose reversed hash is below the cursor has been visited" stays true when
// the table is rebuilt bigger or smaller between two batches; after a shrink, the bucket
// under the cursor also holds entries already visited, which the cursor filters out.
// A key's hash never changes, so no key is visited twice.
func (t *Table[V]) Range(fn func(key netip.AddrPort, v *V) bool) {
	buf := make([]entry[V], 0, 2*rangeBatch)
	var pos uint64
	for {
		var done bool
		buf, pos, done = t.collect(buf[:0], pos)
		for _, e := range buf {
			if !fn(e.key, e.val) {
				return
			}
		}
		if done {
			return
		}
	}
}

// collect appends to buf, in one read section, the entries of the buckets from the
// cursor pos on, and returns the cursor after them and whether that was the last bucket.
// It finishes every bucket it starts; only a chain longer than the whole buffer (which
// a random seed makes vanishingly unlikely) makes append allocate inside the section.
func (t *Table[V]) collect(buf []entry[V], pos uint64) ([]entry[V], uint64, bool) {
	t.smr.Enter()
	a := t.cur.Load()
	// Each bucket covers 2^(64-k) positions, k = log2(len(heads)) >= 3 (minBuckets), so
	// the width does not overflow; the end of the last bucket wraps to 0.
	width := uint64(1) << (64 - bits.Len64(a.mask))
	for range rangeBuckets {
		b := bits.Reverse64(pos) & a.mask
		for n := a.heads[b].Load(); n != nil; n = n.next.Load() {
			if v := n.val.Load(); v != nil && bits.Reverse64(n.hash) >= pos { // nil: deleted meanwhile
				buf = append(buf, entry[V]{n.key, v})
			}
		}
		pos = bits.Reverse64(b) + width
		if pos == 0 || len(buf) >= rangeBatch {
			break
		}
	}
	t.smr.Exit()
	return buf, pos, pos == 0
}
