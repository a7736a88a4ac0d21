package mbuf

import (
	"fmt"
	"io"

	"github.com/softnet-go/softnet/uma"
)

// Stat is a snapshot of the mbuf and cluster zones, their kegs and the Limit: what
// FreeBSD's netstat -m reads through libmemstat, and what the daemon's /metrics exports.
// Each zone's counts are exact (see uma.ZoneStats); the zones are read one after another,
// so a snapshot taken while others allocate may be a moment apart between zones.
type Stat struct {
	Mbuf      uma.ZoneStats // "mbuf"
	Packet    uma.ZoneStats // "mbuf_packet": mbuf+cluster pairs (its clusters count in Cluster too)
	Cluster   uma.ZoneStats // "mbuf_cluster": 2 KiB
	JumboPage uma.ZoneStats // "mbuf_jumbo_page"
	Jumbo9    uma.ZoneStats // "mbuf_jumbo_9k"
	Jumbo16   uma.ZoneStats // "mbuf_jumbo_16k"
	Jumbo64   uma.ZoneStats // "mbuf_jumbo_64k"
	ExtRef    uma.ZoneStats // "mbuf_ext_refcnt": descriptors of ExtAdd memory
	// Kegs holds one entry per keg: "mbuf" (shared by Mbuf and Packet), then one per
	// cluster zone, named like it.
	Kegs []uma.KegStats
	// PacketBare counts packet-zone pairs cached without their cluster, whose cluster was
	// still shared when the mbuf was freed; GetCL gives them a new one.
	PacketBare int64
	Limit      uma.LimitStats
}

// Stats returns a snapshot of every mbuf zone, keg and the Limit.
func Stats() Stat {
	s := Stat{
		Mbuf:       mbufZone.Stats(),
		Packet:     packetZone.Stats(),
		Cluster:    clZones[extCluster].Stats(),
		JumboPage:  clZones[extJumboP].Stats(),
		Jumbo9:     clZones[extJumbo9].Stats(),
		Jumbo16:    clZones[extJumbo16].Stats(),
		Jumbo64:    clZones[extJumbo64].Stats(),
		ExtRef:     clZones[extCaller].Stats(),
		PacketBare: pktBare.Load(),
		Limit:      limit.Stats(),
	}
	s.Kegs = append(s.Kegs, mbufZone.Keg().Stats())
	for _, k := range []extType{extCluster, extJumboP, extJumbo9, extJumbo16, extJumbo64, extCaller} {
		s.Kegs = append(s.Kegs, clZones[k].Keg().Stats())
	}
	return s
}

// kegFree returns the free items of the keg named name.
func (s *Stat) kegFree(name string) int64 {
	for _, k := range s.Kegs {
		if k.Name == name {
			return k.Free
		}
	}
	return 0
}

// Report writes the statistics in the format of FreeBSD's netstat -m (usr.bin/netstat/
// mbuf.c), which the daemon serves at /debug/mbuf. As there, a zone's "cache" is what its
// per-P and zone caches hold, plus its keg's free items for a primary zone; cached
// packet-zone pairs count in the cluster line's cache, not its current. Differences: the
// 64k jumbo zone (OpenBSD's mcl64k) gets a line and a column of its own; "max" is the
// zone's item limit, else what the memory Limit alone would allow (0: unlimited); there
// are no sendfile or sfbuf lines; and the memory Limit, which is OpenBSD's model, ends
// the report in OpenBSD's netstat -m words.
func Report(w io.Writer) {
	s := Stats()
	page := int64(MJumPageSize)
	cache := func(z uma.ZoneStats) int64 { return z.CachedP + z.CachedZone + s.kegFree(z.Name) }
	lim := func(z uma.ZoneStats) int64 {
		if z.MaxItems > 0 {
			return z.MaxItems
		}
		if s.Limit.Max > 0 && z.ItemSize > 0 {
			return s.Limit.Max / z.ItemSize
		}
		return 0
	}
	mbufFree := cache(s.Mbuf) // the primary zone of the mbuf keg: its free items count here
	pktCount := s.Packet.InUse
	pktFree := s.Packet.CachedP + s.Packet.CachedZone
	pktFreeCl := max(pktFree-s.PacketBare, 0) // cached pairs that do hold a cluster
	clCount, clFree := s.Cluster.InUse, cache(s.Cluster)

	fmt.Fprintf(w, "%d/%d/%d mbufs in use (current/cache/total)\n",
		s.Mbuf.InUse+pktCount, mbufFree+pktFree, s.Mbuf.InUse+pktCount+mbufFree+pktFree)
	fmt.Fprintf(w, "%d/%d/%d/%d mbuf clusters in use (current/cache/total/max)\n",
		clCount-pktFreeCl, clFree+pktFreeCl, clCount+clFree, lim(s.Cluster))
	fmt.Fprintf(w, "%d/%d mbuf+clusters out of packet secondary zone in use (current/cache)\n",
		pktCount, pktFree)
	jumbos := []struct {
		z    uma.ZoneStats
		size int64
		name string
	}{
		{s.JumboPage, page, fmt.Sprintf("%dk (page size)", page/1024)},
		{s.Jumbo9, MJum9Bytes, "9k"},
		{s.Jumbo16, MJum16Bytes, "16k"},
		{s.Jumbo64, MJum64Bytes, "64k"},
	}
	var jumboUse, jumboCache int64
	for _, j := range jumbos {
		c := cache(j.z)
		fmt.Fprintf(w, "%d/%d/%d/%d %s jumbo clusters in use (current/cache/total/max)\n",
			j.z.InUse, c, j.z.InUse+c, lim(j.z), j.name)
		jumboUse += j.z.InUse * j.size
		jumboCache += c * j.size
	}
	inUse := (s.Mbuf.InUse+pktCount)*MSize + pktCount*MCLBytes +
		max(clCount-pktCount-pktFreeCl, 0)*MCLBytes + jumboUse
	inCache := (mbufFree+pktFree)*MSize + (pktFreeCl+clFree)*MCLBytes + jumboCache
	fmt.Fprintf(w, "%dK/%dK/%dK bytes allocated to network (current/cache/total)\n",
		inUse/1024, inCache/1024, (inUse+inCache)/1024)
	fmt.Fprintf(w, "%d/%d/%d requests for mbufs denied (mbufs/clusters/mbuf+clusters)\n",
		s.Mbuf.Failures, s.Cluster.Failures, s.Packet.Failures)
	fmt.Fprintf(w, "%d/%d/%d requests for mbufs delayed (mbufs/clusters/mbuf+clusters)\n",
		s.Mbuf.Sleeps, s.Cluster.Sleeps, s.Packet.Sleeps)
	fmt.Fprintf(w, "%d/%d/%d/%d requests for jumbo clusters delayed (%dk/9k/16k/64k)\n",
		s.JumboPage.Sleeps, s.Jumbo9.Sleeps, s.Jumbo16.Sleeps, s.Jumbo64.Sleeps, page/1024)
	fmt.Fprintf(w, "%d/%d/%d/%d requests for jumbo clusters denied (%dk/9k/16k/64k)\n",
		s.JumboPage.Failures, s.Jumbo9.Failures, s.Jumbo16.Failures, s.Jumbo64.Failures, page/1024)
	fmt.Fprintf(w, "%d/%d/%d Kbytes allocated to network (current/peak/max)\n",
		s.Limit.Used/1024, s.Limit.Peak/1024, s.Limit.Max/1024)
	fmt.Fprintf(w, "%d requests for memory denied\n", s.Limit.Refused)
}
