// Package mbuf is the BSD kernel's packet buffer for Go: mbufs, chains, packet headers,
// tags and clusters, with the whole operation set of uipc_mbuf.c, allocated from UMA
// zones (package uma) under one memory Limit.
//
// It is for code that moves packets or streams in user space and wants buffers that can
// be sliced, shared and prepended without copying, chains that go straight into writev,
// a hard memory cap with back-pressure, and statistics that say where memory went.
//
// # Mbufs and chains
//
// An Mbuf holds a data window (Data, Len) into its own MLen bytes of internal storage or
// into external storage: a cluster of MCLBytes, MJumPageSize, MJum9Bytes, MJum16Bytes or
// MJum64Bytes, or caller memory attached with ExtAdd. Mbufs link into a chain (Next) that
// holds one packet or a stretch of a stream; the first mbuf of a packet carries a PktHdr
// (MPktHdr) with the packet's length, flow id, receive interface, checksum flags and tags,
// and links to the next packet of a queue (NextPkt). The links are changed only by the
// operations: Cat, CatPkt, Split and the rest for chains, Link and Unlink to join and cut
// chains as they are (a socket buffer's records), and a List or Queue (OpenBSD's
// mbuf_list and mbuf_queue) for packets, or LinkPkt and UnlinkPkt for a queue kept by hand.
//
// Allocation takes a How: DontWait (M_NOWAIT) fails at once at the memory Limit with an
// error wrapping syscall.ENOBUFS; Wait(ctx) (M_WAITOK) waits until memory comes back and
// fails only when ctx ends. Every Mbuf has exactly one owner, which frees it (Free,
// FreeM) or hands it on; an Mbuf is not safe for concurrent use.
//
//	m, err := mbuf.GetCL(mbuf.DontWait, mbuf.MTData, mbuf.MPktHdr) // mbuf + 2 KiB cluster
//	if err != nil {
//		return err // ENOBUFS: at the memory Limit
//	}
//	m.Extend(copy(m.Tail(), payload)) // write into the trailing space, then account it
//	m.PktHdr().Len = m.Len()
//	m, err = m.Prepend(8, mbuf.DontWait) // room for a header in front
//	...
//	m.WriteAll(conn) // one writev; the chain stays the caller's
//	m.FreeM()
//
// # Sharing
//
// A cluster's reference count lives in its descriptor, carved from the slab with the
// cluster. CopyM, CopyPacket and Split share clusters instead of copying them, at the
// cost of one new mbuf and one atomic add each: no lock, no allocation for the count, and
// no leader mbuf that must outlive the others. The release that takes the count to zero,
// and only that one, gives the cluster back. While a cluster is shared, every mbuf on it
// is read-only (Writable is false, LeadingSpace and TrailingSpace are 0), and operations
// that write — CopyBack, Prepend, MakeSpace, Unshare — copy first; once the other sharers
// are freed it is writable again, unless it is marked read-only: MRdOnly passes to every
// mbuf that comes to share the cluster (CopyM, CopyPacket, Split, MakeSpace), as
// M_RDONLY does in both kernels, so a sharer never becomes writable when the original
// goes. ExtRef holds such a reference outside any mbuf (m_extaddref, m_cljget). Zero marks
// storage to be wiped before it is reused.
//
// # Failure behaviour
//
// Each operation's doc comment says what it leaves when an allocation fails, and these
// follow the BSD routines: Pullup, Pulldown, Prepend and Unshare free the whole chain;
// CopyM, CopyPacket, Dup, Split, Defrag and MakeSpace leave the input unchanged;
// Collapse may have modified it, Fragment returns the original; Get2, GetClusterRef,
// NewExtRef and the other allocators leave nothing allocated, and ClGet, ClJGet and ExtAdd
// leave the mbuf as it was. CopyBack and Append, which in C may stop part-way, here
// allocate everything first and change nothing on failure. A Queue at its maximum length
// frees the packet it drops and counts it (mq_enqueue). Asking for bytes past the end of a
// chain panics where both kernels assert (CopyData, Apply, CopyM) and returns ErrTooShort
// where they return NULL (Split, Pullup, Pulldown, MakeSpace). The module's tests drive
// the failure paths with its internal fault-injection knob, which makes non-blocking
// allocations in every zone fail with a given probability (FreeBSD's MBUF_STRESS_TEST
// m_defragrandomfailures, for every zone); Wait allocations are not affected.
//
// # FreeBSD or OpenBSD
//
// Where the two systems differ the doc comment says which is followed and why. In short:
// FreeBSD's zones (zone names, the packet zone, m_getcl, m_getm2, m_get2, m_cljget,
// m_extaddref, m_dup, m_split without tag copies, m_catpkt, m_collapse, m_unshare,
// m_fragment, m_freemp, netstat -m) under OpenBSD's single byte limit, with OpenBSD's
// 64 KiB cluster, m_pullup (clusters up to 64 KiB), m_makespace, m_zero, mbuf types,
// read-only external buffers, and mbuf_list and mbuf_queue (List, Queue).
//
// # Memory and statistics
//
// The zones are "mbuf", "mbuf_packet" (mbuf+cluster pairs, FreeBSD's zone_pack),
// "mbuf_cluster", "mbuf_jumbo_page", "mbuf_jumbo_9k", "mbuf_jumbo_16k", "mbuf_jumbo_64k"
// and "mbuf_ext_refcnt" (the descriptors of ExtAdd and NewExtRef), all charging the one
// Limit, which is unlimited until Limit().SetMax. Tags are ordinary heap objects, not
// charged, as OpenBSD's tag pool is not. Stats returns every zone's exact counts; Report
// writes them as FreeBSD's netstat -m does.
//
// The zones, the Limit and the statistics are process-global, as the kernel's are: they
// are made when the package is initialised, and every user of the package in the process
// — the program, each library that embeds it, and in a test binary the code under test
// and everything it imports — allocates from the same zones under the same Limit and
// shows up in the same Stats. A library that embeds the package should therefore leave
// the Limit alone (Limit().SetMax and SetLimit belong to the program's main, set once at
// start-up, as the daemon's --mem-limit does), take its How from its caller, treat
// ENOBUFS as back-pressure from the whole process rather than from its own use, and free
// every mbuf it allocates (LeakReport and Stats check that in its tests, counting other
// users' mbufs too).
//
// # Debugging
//
// Built with -tags mbufdebug, freed internal storage and clusters are poisoned, any use of
// a freed mbuf, any double free and any write after free panics with the stacks that
// allocated and freed it, and LeakReport lists the mbufs still out by allocation stack.
// Without the tag these checks compile to nothing.
package mbuf
