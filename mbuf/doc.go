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
// and links to the next packet of a queue (NextPkt).
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
//	m.WriteTo(conn) // one writev
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
// are freed it is writable again. Zero marks storage to be wiped before it is reused.
//
// # Failure behaviour
//
// Each operation's doc comment says what it leaves when an allocation fails, and these
// follow the BSD routines: Pullup, Pulldown, Prepend and Unshare free the whole chain;
// CopyM, CopyPacket, Dup, Split, Defrag and MakeSpace leave the input unchanged;
// Collapse may have modified it, Fragment returns the original. CopyBack and Append,
// which in C may stop part-way, here allocate everything first and change nothing on
// failure. Tests drive these paths with uma.SetFailureRate, the fault-injection hook
// that makes non-blocking allocations in every zone fail with a given probability
// (FreeBSD's m_defragrandomfailures, for every zone); Wait allocations are not affected.
//
// # FreeBSD or OpenBSD
//
// Where the two systems differ the doc comment says which is followed and why. In short:
// FreeBSD's zones (zone names, the packet zone, m_getcl, m_getm2, m_dup, m_split without
// tag copies, m_catpkt, m_collapse, m_unshare, m_fragment, netstat -m) under OpenBSD's
// single byte limit, with OpenBSD's 64 KiB cluster, m_pullup (clusters up to 64 KiB),
// m_makespace, m_zero, mbuf types and read-only external buffers.
//
// # Memory and statistics
//
// The zones are "mbuf", "mbuf_packet" (mbuf+cluster pairs, FreeBSD's zone_pack),
// "mbuf_cluster", "mbuf_jumbo_page", "mbuf_jumbo_9k", "mbuf_jumbo_16k", "mbuf_jumbo_64k"
// and "mbuf_ext_refcnt" (ExtAdd's descriptors), all charging the one Limit, which is
// unlimited until Limit().SetMax. Tags are ordinary heap objects, not charged, as
// OpenBSD's tag pool is not. Stats returns every zone's exact counts; Report writes them
// as FreeBSD's netstat -m does.
//
// # Debugging
//
// Built with -tags mbufdebug, freed internal storage and clusters are poisoned, any use of
// a freed mbuf, any double free and any write after free panics with the stacks that
// allocated and freed it, and LeakReport lists the mbufs still out by allocation stack.
// Without the tag these checks compile to nothing.
package mbuf
