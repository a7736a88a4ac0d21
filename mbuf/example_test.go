package mbuf_test

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"

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
	m.WriteAll(&out)
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

// A List queues packets in order, without a lock; Dequeue hands each back.
func ExampleList() {
	var l mbuf.List
	for _, s := range []string{"one", "two", "three"} {
		m, err := mbuf.DevGet([]byte(s), 0, mbuf.DontWait)
		if err != nil {
			panic(err)
		}
		l.Enqueue(m)
	}
	fmt.Println(l.Len(), l.HDataLen())
	for m := l.Dequeue(); m != nil; m = l.Dequeue() {
		fmt.Printf("%s ", m.Data())
		m.FreeM()
	}
	fmt.Println(l.Empty())
	// Output:
	// 3 3
	// one two three true
}

// A Queue is shared between goroutines and drops, and frees, what would pass its maximum
// length.
func ExampleQueue() {
	q := mbuf.NewQueue(2)
	for _, s := range []string{"a", "b", "c"} {
		m, err := mbuf.DevGet([]byte(s), 0, mbuf.DontWait)
		if err != nil {
			panic(err)
		}
		if err := q.Enqueue(m); err != nil {
			fmt.Println(s, "dropped:", errors.Is(err, syscall.ENOBUFS))
		}
	}
	l := q.Delist() // everything at once; the List needs no lock
	for m := range l.All() {
		fmt.Printf("%s ", m.Data())
	}
	fmt.Println(q.Len(), q.Drops(), l.Purge())
	// Output:
	// c dropped: true
	// a b 0 1 2
}

// One cluster, read into once, handed out as two packets that share it (m_extaddref).
func ExampleExtRef() {
	r, err := mbuf.GetClusterRef(mbuf.DontWait, mbuf.MJumPageSize)
	if err != nil {
		panic(err)
	}
	n := copy(r.Bytes(), "firstsecond") // a driver's read of two frames
	var pkts mbuf.List
	for _, w := range [][2]int{{0, 5}, {5, n}} {
		m, err := mbuf.GetHdr(mbuf.DontWait, mbuf.MTData)
		if err != nil {
			panic(err)
		}
		m.ExtAddRef(r, w[0], w[1]-w[0])
		m.FixHdr()
		pkts.Enqueue(m)
	}
	r.Release() // the cluster goes back with the last packet
	for m := range pkts.All() {
		fmt.Printf("%q writable %v\n", m.Data(), m.Writable())
	}
	pkts.Purge()
	// Output:
	// "first" writable false
	// "second" writable false
}
