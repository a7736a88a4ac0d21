package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"testing"

	"github.com/softnet-go/softnet/mbuf"
	"github.com/softnet-go/softnet/uma"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/mem"
	gvbuf "gvisor.dev/gvisor/pkg/buffer"
)

const (
	pieceBytes = 2048     // one cluster, one sync.Pool buffer, one gVisor view
	chainBytes = 64 << 10 // a 64 KiB chain ...
	pieces     = chainBytes / pieceBytes
	splitAt    = 33000 // inside the 17th piece, so that every library must cut a buffer
	pullupN    = 4096  // spans two pieces
	headerN    = 16    // a small protocol header
)

// MicroResult is one testing.Benchmark measurement.
type MicroResult struct {
	Group    string  `json:"group"`
	Impl     string  `json:"impl"`
	Softnet  bool    `json:"softnet"`
	NsOp     float64 `json:"ns_op"`
	AllocsOp int64   `json:"allocs_op"`
	BytesOp  int64   `json:"bytes_op"`
	N        int     `json:"n"`
	// Samples is ns/op of every run; NsOp is their median.
	Samples []float64 `json:"samples_ns_op"`
	// Advantage is this group's softnet ns/op divided into this row's: how many times
	// softnet's time this implementation takes (> 1: softnet is faster).
	Advantage float64 `json:"softnet_advantage"`
	Note      string  `json:"note,omitempty"`
}

type micro struct {
	group, impl string
	softnet     bool
	note        string
	fn          func(b *testing.B)
}

// cl is the uma item of the zone benchmark: a 2 KiB buffer carved from its slab.
type cl struct{ buf []byte }

func carve(items []cl) {
	back := make([]byte, len(items)*pieceBytes)
	for i := range items {
		items[i].buf = back[i*pieceBytes : (i+1)*pieceBytes : (i+1)*pieceBytes]
	}
}

func mustV[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newZone() *uma.Zone[cl] {
	l := mustV(uma.NewLimit(64 << 20)) // the Limit and statistics are on
	k := mustV(uma.NewKeg(l, uma.KegConfig[cl]{Name: "bench", ItemSize: pieceBytes, SlabInit: carve}))
	return mustV(uma.NewZone(k, uma.ZoneConfig[cl]{Name: "bench"}))
}

var bytePool = sync.Pool{New: func() any { b := make([]byte, pieceBytes); return &b }}

var payload = func() []byte {
	b := make([]byte, chainBytes)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}()

// mbufChain is 64 KiB in 32 full 2 KiB clusters.
func mbufChain() *mbuf.Mbuf {
	var top *mbuf.Mbuf
	for i := range pieces {
		m := mustV(mbuf.GetCL(mbuf.DontWait, mbuf.MTData, 0))
		m.Extend(copy(m.Tail(), payload[i*pieceBytes:(i+1)*pieceBytes]))
		if top == nil {
			top = m
		} else {
			top.Cat(m)
		}
	}
	return top
}

// gvChain is the same 64 KiB in 32 full 2 KiB gVisor views (chunks from its pools).
func gvChain() *gvbuf.Buffer {
	var b gvbuf.Buffer
	for i := range pieces {
		v := gvbuf.NewView(pieceBytes)
		mustV(v.Write(payload[i*pieceBytes : (i+1)*pieceBytes]))
		if err := b.Append(v); err != nil {
			panic(err)
		}
	}
	return &b
}

// grpcChain is the same 64 KiB in 32 2 KiB grpc-go mem buffers from the default pool.
func grpcChain() mem.BufferSlice {
	pool := mem.DefaultBufferPool()
	s := make(mem.BufferSlice, 0, pieces)
	for i := range pieces {
		s = append(s, mem.Copy(payload[i*pieceBytes:(i+1)*pieceBytes], pool))
	}
	return s
}

// onChain starts a benchmark on a chain that newChain makes once and free frees when the
// benchmark ends: it reports allocations, and with perChain the chain's bytes per op.
func onChain[C any](b *testing.B, newChain func() C, free func(C), perChain bool) C {
	c := newChain()
	b.Cleanup(func() { free(c) })
	if perChain {
		b.SetBytes(chainBytes)
	}
	b.ReportAllocs()
	return c
}

// devNull opens /dev/null for writing, closed when the benchmark ends.
func devNull(b *testing.B) int {
	fd, err := unix.Open(os.DevNull, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		panic(err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	return fd
}

// micros are the microbenchmarks. Each one's timed loop is written out in full, though
// many differ from another in a line or two: a call through a function value in the loop
// would be timed as well.
func micros(withGvisor bool) []micro {
	hdr := make([]byte, headerN)
	ms := []micro{
		{group: "alloc 2 KiB", impl: "softnet uma Zone Alloc+Free", softnet: true, fn: func(b *testing.B) {
			z := newZone()
			b.ReportAllocs()
			for b.Loop() {
				c := mustV(z.Alloc())
				z.Free(c)
			}
		}},
		{group: "alloc 2 KiB", impl: "softnet mbuf GetCL+FreeM", softnet: true, note: "mbuf + cluster pair", fn: func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mustV(mbuf.GetCL(mbuf.DontWait, mbuf.MTData, 0)).FreeM()
			}
		}},
		{group: "alloc 2 KiB", impl: "sync.Pool Get+Put (*[]byte)", fn: func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p := bytePool.Get().(*[]byte)
				bytePool.Put(p)
			}
		}},
		{group: "alloc 2 KiB, 2 goroutines", impl: "softnet uma Zone Alloc+Free", softnet: true, fn: func(b *testing.B) {
			z := newZone()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c := mustV(z.Alloc())
					z.Free(c)
				}
			})
		}},
		{group: "alloc 2 KiB, 2 goroutines", impl: "sync.Pool Get+Put (*[]byte)", fn: func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p := bytePool.Get().(*[]byte)
					bytePool.Put(p)
				}
			})
		}},
		{group: "share 64 KiB", impl: "softnet mbuf CopyM+FreeM", softnet: true, fn: func(b *testing.B) {
			m := onChain(b, mbufChain, (*mbuf.Mbuf).FreeM, true)
			for b.Loop() {
				mustV(m.CopyM(0, mbuf.CopyAll, mbuf.DontWait)).FreeM()
			}
		}},
		{group: "share 64 KiB", impl: "grpc-go mem.BufferSlice Ref+Free", note: "no new slice: refcounts only", fn: func(b *testing.B) {
			s := onChain(b, grpcChain, mem.BufferSlice.Free, true)
			for b.Loop() {
				s.Ref()
				s.Free()
			}
		}},
		{group: "share 64 KiB, 2 goroutines", impl: "softnet mbuf CopyM+FreeM", softnet: true, fn: func(b *testing.B) {
			twoGoroutines(b, mbufChain, func(m *mbuf.Mbuf) { mustV(m.CopyM(0, mbuf.CopyAll, mbuf.DontWait)).FreeM() }, (*mbuf.Mbuf).FreeM)
		}},
		{group: "share 64 KiB, 2 goroutines", impl: "global-mutex reference ring (OpenBSD m_extref)", fn: func(b *testing.B) {
			twoGoroutines(b, refChain, func(m *refMbuf) { refFreeM(refCopyM(m)) }, func(*refMbuf) {})
		}},
		{group: "split 64 KiB at 33,000 (share, cut, free both)", impl: "softnet mbuf CopyM+Split", softnet: true, fn: func(b *testing.B) {
			m := onChain(b, mbufChain, (*mbuf.Mbuf).FreeM, true)
			for b.Loop() {
				c := mustV(m.CopyM(0, mbuf.CopyAll, mbuf.DontWait))
				rest := mustV(c.Split(splitAt, mbuf.DontWait))
				c.FreeM()
				rest.FreeM()
			}
		}},
		{group: "split 64 KiB at 33,000 (share, cut, free both)", impl: "grpc-go Ref + mem.SplitUnsafe", fn: func(b *testing.B) {
			s := onChain(b, grpcChain, mem.BufferSlice.Free, true)
			left := make(mem.BufferSlice, 0, pieces+1)
			right := make(mem.BufferSlice, 0, pieces+1)
			for b.Loop() {
				s.Ref()
				i, off := splitAt/pieceBytes, splitAt%pieceBytes
				l, r := mem.SplitUnsafe(s[i], off)
				left = append(append(left[:0], s[:i]...), l)
				right = append(append(right[:0], r), s[i+1:]...)
				left.Free()
				right.Free()
			}
		}},
		{group: "pullup 4 KiB of a shared 64 KiB chain", impl: "softnet mbuf CopyM+Pullup", softnet: true, fn: func(b *testing.B) {
			m := onChain(b, mbufChain, (*mbuf.Mbuf).FreeM, false)
			for b.Loop() {
				c := mustV(m.CopyM(0, mbuf.CopyAll, mbuf.DontWait))
				c = mustV(c.Pullup(pullupN, mbuf.DontWait))
				_ = c.Data()[pullupN-1] // the pulled-up bytes are read, as a parser would
				c.FreeM()
			}
		}},
		{group: "pullup 4 KiB of a shared 64 KiB chain", impl: "grpc-go Ref + copy into a pool buffer", fn: func(b *testing.B) {
			s := onChain(b, grpcChain, mem.BufferSlice.Free, false)
			pool := mem.DefaultBufferPool()
			for b.Loop() {
				s.Ref()
				p := pool.Get(pullupN)
				n := 0
				for _, x := range s {
					n += copy((*p)[n:], x.ReadOnlyData())
					if n == pullupN {
						break
					}
				}
				_ = (*p)[pullupN-1] // the pulled-up bytes are read, as a parser would
				pool.Put(p)
				s.Free()
			}
		}},
		{group: "prepend 16 B to a shared 64 KiB chain", impl: "softnet mbuf CopyM+Prepend", softnet: true, fn: func(b *testing.B) {
			m := onChain(b, mbufChain, (*mbuf.Mbuf).FreeM, false)
			for b.Loop() {
				c := mustV(m.CopyM(0, mbuf.CopyAll, mbuf.DontWait))
				c = mustV(c.Prepend(headerN, mbuf.DontWait))
				copy(c.Data(), hdr)
				c.FreeM()
			}
		}},
		{group: "prepend 16 B to a shared 64 KiB chain", impl: "grpc-go Ref + mem.Copy header + new slice", fn: func(b *testing.B) {
			s := onChain(b, grpcChain, mem.BufferSlice.Free, false)
			pool := mem.DefaultBufferPool()
			c := make(mem.BufferSlice, 0, pieces+1)
			for b.Loop() {
				s.Ref()
				c = append(append(c[:0], mem.Copy(hdr, pool)), s...)
				c.Free()
			}
		}},
		{group: "writev 64 KiB chain to /dev/null", impl: "softnet mbuf WriteFd", softnet: true, fn: func(b *testing.B) {
			m := onChain(b, mbufChain, (*mbuf.Mbuf).FreeM, true)
			fd := devNull(b)
			for b.Loop() {
				if n, err := m.WriteFd(fd); err != nil || n != chainBytes {
					panic(fmt.Sprint(n, err))
				}
			}
		}},
		{group: "writev 64 KiB chain to /dev/null", impl: "grpc-go BufferSlice + unix.Writev", fn: func(b *testing.B) {
			s := onChain(b, grpcChain, mem.BufferSlice.Free, true)
			fd := devNull(b)
			iov := make([][]byte, 0, pieces)
			for b.Loop() {
				iov = iov[:0]
				for _, x := range s {
					iov = append(iov, x.ReadOnlyData())
				}
				if n, err := unix.Writev(fd, iov); err != nil || n != chainBytes {
					panic(fmt.Sprint(n, err))
				}
			}
		}},
	}
	if withGvisor {
		ms = append(ms,
			micro{group: "alloc 2 KiB", impl: "gVisor buffer.NewView(2048)+Release", fn: func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					gvbuf.NewView(pieceBytes).Release()
				}
			}},
			micro{group: "alloc 2 KiB, 2 goroutines", impl: "gVisor buffer.NewView(2048)+Release", fn: func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						gvbuf.NewView(pieceBytes).Release()
					}
				})
			}},
			micro{group: "share 64 KiB", impl: "gVisor Buffer.Clone+Release", fn: func(b *testing.B) {
				g := onChain(b, gvChain, (*gvbuf.Buffer).Release, true)
				for b.Loop() {
					c := g.Clone()
					c.Release()
				}
			}},
			micro{group: "share 64 KiB, 2 goroutines", impl: "gVisor Buffer.Clone+Release", fn: func(b *testing.B) {
				twoGoroutines(b, gvChain, func(g *gvbuf.Buffer) {
					c := g.Clone()
					c.Release()
				}, (*gvbuf.Buffer).Release)
			}},
			micro{group: "split 64 KiB at 33,000 (share, cut, free both)", impl: "gVisor Clone×2+Truncate/TrimFront", note: "pkg/buffer has no Split", fn: func(b *testing.B) {
				g := onChain(b, gvChain, (*gvbuf.Buffer).Release, true)
				for b.Loop() {
					c := g.Clone()
					rest := g.Clone()
					c.Truncate(splitAt)
					rest.TrimFront(splitAt)
					c.Release()
					rest.Release()
				}
			}},
			micro{group: "pullup 4 KiB of a shared 64 KiB chain", impl: "gVisor Clone+PullUp", fn: func(b *testing.B) {
				g := onChain(b, gvChain, (*gvbuf.Buffer).Release, false)
				for b.Loop() {
					c := g.Clone()
					v, ok := c.PullUp(0, pullupN)
					if !ok {
						panic("PullUp")
					}
					_ = v.AsSlice()[pullupN-1] // the pulled-up bytes are read, as a parser would
					c.Release()
				}
			}},
			micro{group: "prepend 16 B to a shared 64 KiB chain", impl: "gVisor Clone+Prepend(NewView)", fn: func(b *testing.B) {
				g := onChain(b, gvChain, (*gvbuf.Buffer).Release, false)
				for b.Loop() {
					c := g.Clone()
					v := gvbuf.NewView(headerN)
					mustV(v.Write(hdr))
					if err := c.Prepend(v); err != nil {
						panic(err)
					}
					c.Release()
				}
			}},
			micro{group: "writev 64 KiB chain to /dev/null", impl: "gVisor Buffer views + unix.Writev", fn: func(b *testing.B) {
				g := onChain(b, gvChain, (*gvbuf.Buffer).Release, true)
				fd := devNull(b)
				iov := make([][]byte, 0, pieces)
				for b.Loop() {
					iov = iov[:0]
					l := g.AsViewList()
					for v := l.Front(); v != nil; v = v.Next() {
						iov = append(iov, v.AsSlice())
					}
					if n, err := unix.Writev(fd, iov); err != nil || n != chainBytes {
						panic(fmt.Sprint(n, err))
					}
				}
			}},
		)
	}
	return ms
}

func nsOp(r testing.BenchmarkResult) float64 {
	return float64(r.T.Nanoseconds()) / float64(max(r.N, 1))
}

// runMicros runs every microbenchmark count times, in rounds within each group, and fills
// in the advantages.
func runMicros(withGvisor bool, count int, logf func(string, ...any)) []MicroResult {
	ms := micros(withGvisor)
	var order []string
	byGroup := map[string][]micro{}
	for _, m := range ms {
		if _, ok := byGroup[m.group]; !ok {
			order = append(order, m.group)
		}
		byGroup[m.group] = append(byGroup[m.group], m)
	}
	var out []MicroResult
	for _, g := range order {
		var ref float64
		start := len(out)
		// count rounds, each running every implementation of the group once, so that
		// the machine's drift touches them alike; keep each one's median by ns/op (as
		// benchstat would summarise them).
		ims := byGroup[g]
		rs := make([][]testing.BenchmarkResult, len(ims))
		for range count {
			for i, m := range ims {
				runtime.GC()
				rs[i] = append(rs[i], testing.Benchmark(m.fn))
			}
		}
		for i, m := range ims {
			var samples []float64
			for _, r := range rs[i] {
				samples = append(samples, nsOp(r))
			}
			sort.Slice(rs[i], func(a, b int) bool { return nsOp(rs[i][a]) < nsOp(rs[i][b]) })
			r := rs[i][len(rs[i])/2]
			mr := MicroResult{Group: g, Impl: m.impl, Softnet: m.softnet, N: r.N, Note: m.note, Samples: samples,
				NsOp: nsOp(r), AllocsOp: r.AllocsPerOp(), BytesOp: r.AllocedBytesPerOp()}
			if m.softnet && ref == 0 { // the group's first softnet row is the reference
				ref = mr.NsOp
			}
			logf("  %-48s %-46s %10.1f ns/op %3d allocs/op", g, m.impl, mr.NsOp, mr.AllocsOp)
			out = append(out, mr)
		}
		for i := start; i < len(out); i++ {
			if ref > 0 {
				out[i].Advantage = out[i].NsOp / ref
			}
		}
	}
	return out
}
