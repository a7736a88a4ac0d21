package flowtable

import (
	"hash/maphash"
	"net/netip"
	"sync/atomic"
)

// A node is one entry of a bucket chain. It comes from the table's SMR zone, so readers
// may still walk a node after it was unlinked and freed, until their section ends; the
// zone's Ctor, not a Dtor, resets it, once no reader can see it.
//
// key and hash are written by the writer between Alloc and the atomic store that links
// the node, and never again while any reader can reach it: readers load them plainly,
// ordered by that store (and, for a recycled node, by the grace period).
type node[V any] struct {
	next atomic.Pointer[node[V]] // unchanged by unlinking this node: a reader on it walks on
	val  atomic.Pointer[V]       // nil once deleted, never while linked
	hash uint64
	key  netip.AddrPort
	// gen counts the times the zone handed this node out. Only tests read it: a reader
	// must never see it change inside a section (the guarantee SMR zones give).
	gen atomic.Uint64
}

// ctor is the zone's Ctor: the node is past its grace period, so nobody can see it. The
// writer sets every field before it links the node; clearing them here drops what a node
// freed by a rebuild still points at (a deleted node's value is cleared by unlink).
func ctor[V any](n *node[V]) error {
	n.next.Store(nil)
	n.val.Store(nil)
	n.gen.Add(1)
	return nil
}

// hashKey hashes a key with the table's random seed, so a remote peer, who picks its
// address and port, cannot aim many flows at one bucket.
//
// An IPv4 address and port pack into one word, hashed with maphash.Comparable at the cost
// of one memhash64; that is the relay's common case. Other keys (IPv6, IPv4-mapped IPv6,
// scoped addresses) hash as a whole AddrPort, zone included, which costs about twice as
// much. The two kinds cannot collide by construction, only by chance, and equality
// decides in any case.
func hashKey(seed maphash.Seed, k netip.AddrPort) uint64 {
	if a := k.Addr(); a.Is4() {
		b := a.As4()
		return maphash.Comparable(seed, uint64(b[0])<<40|uint64(b[1])<<32|uint64(b[2])<<24|uint64(b[3])<<16|uint64(k.Port()))
	}
	return maphash.Comparable(seed, k)
}
