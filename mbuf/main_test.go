package mbuf

import (
	"bytes"
	"testing"

	"github.com/softnet-go/softnet/uma"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// usage is what the tests' callers hold: mbufs out of both mbuf zones, and clusters by
// kind, not counting the 2 KiB clusters parked in the packet zone's caches with their
// pair (which count as in use in the cluster zone, as in FreeBSD).
type usage struct {
	mbufs    int64
	clusters [numExt]int64
}

func snapshot() usage {
	s := Stats()
	u := usage{mbufs: s.Mbuf.InUse + s.Packet.InUse}
	for k, z := range []uma.ZoneStats{s.ExtRef, s.Cluster, s.JumboPage, s.Jumbo9, s.Jumbo16, s.Jumbo64} {
		u.clusters[k] = z.InUse
	}
	u.clusters[extCluster] -= s.Packet.CachedP + s.Packet.CachedZone - s.PacketBare
	return u
}

// inUse returns a usage two consecutive snapshots agree on, so that a reclaimer tick
// that parts cached pairs between reading two zones cannot tear it.
func inUse() usage {
	u := snapshot()
	for {
		v := snapshot()
		if v == u {
			return u
		}
		u = v
	}
}

// checkUsage fails the test unless usage is back to before.
func checkUsage(t testing.TB, before usage) {
	t.Helper()
	if after := inUse(); after != before {
		t.Fatalf("zones in use: before %+v, after %+v", before, after)
	}
}

// pattern returns n bytes that differ from their neighbours.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// bytesOf returns the chain's bytes.
func bytesOf(m *Mbuf) []byte {
	var b []byte
	for ; m != nil; m = m.next {
		b = append(b, m.Data()...)
	}
	return b
}

func mustEqual(t testing.TB, what string, m *Mbuf, want []byte) {
	t.Helper()
	checkChain(t, m)
	if got := bytesOf(m); !bytes.Equal(got, want) {
		t.Fatalf("%s: chain holds %d bytes %x..., want %d bytes %x...", what, len(got), head(got), len(want), head(want))
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

// checkChain is m_sanity: every window inside its storage, a header only on the head and
// its length the chain's, references counted.
func checkChain(t testing.TB, m *Mbuf) {
	t.Helper()
	for mm := m; mm != nil; mm = mm.next {
		if mm.off < 0 || mm.len < 0 || int(mm.off+mm.len) > len(mm.storage()) {
			t.Fatalf("mbuf %p: window [%d, +%d) outside storage of %d", mm, mm.off, mm.len, len(mm.storage()))
		}
		if mm != m && mm.flags&MPktHdr != 0 {
			t.Fatalf("mbuf %p: packet header inside a chain", mm)
		}
		if mm.ext != nil && mm.ext.ref.Load() < 1 {
			t.Fatalf("mbuf %p: cluster refcount %d", mm, mm.ext.ref.Load())
		}
	}
	if m != nil && m.flags&MPktHdr != 0 && m.hdr.Len != m.Length() {
		t.Fatalf("packet header length %d, chain length %d", m.hdr.Len, m.Length())
	}
}

// buildChain makes a packet holding b, with mbufs of the given storage kinds in turn
// (extCaller: internal storage), each filled as far as it holds.
func buildChain(t testing.TB, b []byte, kinds ...extType) *Mbuf {
	t.Helper()
	var head, tail *Mbuf
	for i := 0; i == 0 || len(b) > 0; i++ {
		f := Flags(0)
		if head == nil {
			f = MPktHdr
		}
		m, err := getKind(DontWait, MTData, f, kinds[i%len(kinds)])
		if err != nil {
			t.Fatal(err)
		}
		k := copy(m.Tail(), b)
		m.Extend(k)
		b = b[k:]
		if head == nil {
			head = m
		} else {
			tail.next = m
		}
		tail = m
	}
	head.FixHdr()
	return head
}
