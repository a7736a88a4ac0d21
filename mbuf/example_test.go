package mbuf_test

import (
	"bytes"
	"fmt"

	"github.com/softnet-go/softnet/mbuf"
)

// A packet built in a cluster, given a header in front, written out with one writev.
func Example() {
	m, err := mbuf.GetCL(mbuf.DontWait, mbuf.MTData, mbuf.MPktHdr)
	if err != nil {
		panic(err) // ENOBUFS at the memory Limit
	}
	defer func() { m.FreeM() }()
	m.Extend(copy(m.Tail(), "payload"))
	m.FixHdr()

	// The cluster starts at its first byte, so the header goes in a new mbuf in front.
	m, err = m.Prepend(len("hdr:"), mbuf.DontWait)
	if err != nil {
		panic(err) // Prepend freed the chain
	}
	copy(m.Data(), "hdr:")

	var out bytes.Buffer
	m.WriteTo(&out)
	fmt.Println(out.String(), m.PktHdr().Len, m.Next() != nil)
	// Output: hdr:payload 11 true
}

// CopyM shares the clusters: both chains are read-only until one of them is freed.
func ExampleMbuf_CopyM() {
	m, _ := mbuf.GetCL(mbuf.DontWait, mbuf.MTData, mbuf.MPktHdr)
	m.Extend(copy(m.Tail(), "shared bytes"))
	m.FixHdr()

	c, _ := m.CopyM(0, mbuf.CopyAll, mbuf.DontWait)
	fmt.Println(string(c.Data()), m.Writable(), c.Writable(), c.TrailingSpace())

	// A write copies first: the other side does not see it.
	c.CopyBack(0, []byte("SHARED"), mbuf.DontWait)
	fmt.Println(string(m.Data()), string(c.Data()))

	c.FreeM()
	fmt.Println(m.Writable())
	m.FreeM()
	// Output:
	// shared bytes false false 0
	// shared bytes SHARED bytes
	// true
}

// Split cuts a packet in two; cut inside a cluster, the halves share it, read-only.
func ExampleMbuf_Split() {
	m, _ := mbuf.GetCL(mbuf.DontWait, mbuf.MTData, mbuf.MPktHdr)
	m.Extend(copy(m.Tail(), "first|second"))
	m.FixHdr()
	tail, _ := m.Split(6, mbuf.DontWait)
	fmt.Printf("%q %d, %q %d, writable %v\n", m.Data(), m.PktHdr().Len, tail.Data(), tail.PktHdr().Len, m.Writable())
	m.CatPkt(tail) // and back together
	fmt.Printf("%q %d\n", bytes.Join(m.AppendBuffers(nil), nil), m.PktHdr().Len)
	m.FreeM()
	// Output:
	// "first|" 6, "second" 6, writable false
	// "first|second" 12
}

// Pullup makes a header contiguous so it can be read through Data.
func ExampleMbuf_Pullup() {
	a, _ := mbuf.DevGet([]byte("GET /index"), 0, mbuf.DontWait)
	b, _ := mbuf.DevGet([]byte(".html HTTP/1.1\r\n"), 0, mbuf.DontWait)
	a.CatPkt(b)
	m, err := a.Pullup(a.PktHdr().Len, mbuf.DontWait)
	if err != nil {
		panic(err) // the chain was freed
	}
	fmt.Printf("%q\n", m.Data())
	m.FreeM()
	// Output: "GET /index.html HTTP/1.1\r\n"
}

// ExtAdd lends caller memory to an mbuf; the free routine runs once, after the last
// sharer is gone.
func ExampleMbuf_ExtAdd() {
	m, _ := mbuf.GetHdr(mbuf.DontWait, mbuf.MTData)
	buf := []byte("caller memory")
	m.ExtAdd(buf, func(b []byte) { fmt.Printf("freed %q\n", b) }, mbuf.MRdOnly, mbuf.DontWait)
	m.FixHdr()
	c, _ := m.CopyM(7, mbuf.CopyAll, mbuf.DontWait)
	m.FreeM()
	fmt.Printf("%q\n", c.Data())
	c.FreeM()
	// Output:
	// "memory"
	// freed "caller memory"
}
