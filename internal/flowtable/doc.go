// Package flowtable is a hash table from a client's address (netip.AddrPort) to its
// state, whose readers never lock: the relay's per-source table, which every worker
// reads on every accept to apply the per-source caps and which is written only when a
// source comes or goes, is one.
//
// One goroutine, the owner (the softnet worker that owns the flows), inserts, replaces,
// deletes and expires entries. Any goroutine — other workers, the admin endpoint — may
// look entries up or range over them at the same time, without taking a lock, blocking,
// or (for Lookup) allocating. Writers are serialised by a mutex, so several writers are
// safe, but the table is built for one: the mutex is then never contended.
//
// The table's nodes come from an SMR uma zone (uma.ZoneConfig.SMR), so they are recycled
// without a reader ever seeing a node reused under it: a deleted node is unlinked with an
// atomic store and freed to the zone, which hands it out again only after every read
// section that could have reached it has ended. Growing or shrinking builds a whole new
// bucket array out of new nodes, publishes it with one atomic store, and then frees the
// old nodes, so a reader walks either the whole old table or the whole new one, never a
// chain being relinked.
//
// # Rules for readers
//
// Lookup and Range may be called from any goroutine, concurrently with everything else.
//
//   - Lookup runs its own read section of the table's SMR (see package smr), so it must
//     not be called inside one: sections of one SMR never nest, and a nested Enter is a
//     fatal error. Inside a section, use LookupInSection.
//   - A lookup that begins after an Insert returned finds the key (unless it was deleted
//     since), and one that begins after a Delete returned does not; a lookup that
//     overlaps either may see the key or not. A found value is always one stored under
//     that key.
//   - The table owns its nodes, not the values: Lookup returns the *V the owner stored.
//     If values are garbage-collected Go objects, the pointer stays valid for as long as
//     the reader keeps it. If the owner recycles values (a free list, a uma zone), a
//     reader may still hold one while it is reused: recycle them through an SMR zone on
//     the table's own SMR (uma.ZoneConfig[V]{SMR: t.SMR()}), and have readers use them
//     only inside a section, with LookupInSection, between t.SMR().Enter() and Exit().
//   - Fields of a value that the owner changes while readers may look must be read and
//     written with sync/atomic (or be immutable once the value is inserted).
//   - Range calls its function outside any read section, so that function may block,
//     allocate, and call the table's methods; see Range for what it visits.
//
// # Rules for the owner
//
// Insert, Delete and Expire must not be called inside a read section of the table's SMR:
// when memory is short, allocating a node waits for a grace period, which a section of
// the same goroutine would hold back for ever (smr.Wait fails fatally instead). The
// function given to Expire runs with the writers' mutex held: it must not call Insert,
// Delete or Expire.
//
// Growth rebuilds the table in one step under the writers' mutex, costing time and nodes
// in proportion to the entries; size the table with New's sizeHint when the number of
// flows is known, so the owner's loop does not stall on a rebuild.
package flowtable
