package mbuf

import (
	"errors"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

// packet returns a packet of n bytes of pattern seed, as buildChain makes them.
func packet(t testing.TB, n int, seed byte) *Mbuf {
	return buildChain(t, pattern(n, seed), extCluster, extCaller)
}

// TestList: a List against a slice of models, through every operation.
func TestList(t *testing.T) {
	before := inUse()
	var l List
	var model [][]byte
	if !l.Empty() || l.Len() != 0 || l.First() != nil || l.Dequeue() != nil || l.HDataLen() != 0 || l.Dechain() != nil {
		t.Fatal("the zero List is not empty")
	}
	check := func(what string) {
		t.Helper()
		if l.Len() != len(model) || l.Empty() != (len(model) == 0) {
			t.Fatalf("%s: Len %d, Empty %v, model %d", what, l.Len(), l.Empty(), len(model))
		}
		i := 0
		for m := range l.All() {
			mustEqual(t, what, m, model[i])
			i++
		}
		if i != len(model) {
			t.Fatalf("%s: All yielded %d packets, want %d", what, i, len(model))
		}
		if len(model) > 0 && l.HDataLen() != len(model[0]) {
			t.Fatalf("%s: HDataLen %d, want %d", what, l.HDataLen(), len(model[0]))
		}
	}
	for i := range 4 {
		m := packet(t, 700*i+1, byte(i))
		l.Enqueue(m)
		model = append(model, bytesOf(m))
		check("Enqueue")
	}
	for m := range l.All() { // stopping early
		if m != l.First() {
			t.Fatal("All did not start at First")
		}
		break
	}
	m := l.Dequeue()
	mustEqual(t, "Dequeue", m, model[0])
	if m.NextPkt() != nil {
		t.Fatal("Dequeue left NextPkt set")
	}
	model = model[1:]
	check("Dequeue")

	var o List
	o.Enqueue(m)
	o.Enqueue(packet(t, 10, 9))
	if !panicked(func() { l.Enqueue(o.First()) }) {
		t.Fatal("Enqueue of a packet linked to others did not panic")
	}
	model = append(model, bytesOf(o.First()), pattern(10, 9))
	l.Enlist(&o)
	if !o.Empty() || o.Len() != 0 {
		t.Fatal("Enlist left packets behind")
	}
	check("Enlist")
	o.Enlist(&l) // into an empty list
	l, o = o, List{}
	check("Enlist into an empty list")
	l.Enlist(&o) // an empty one: nothing
	check("Enlist of an empty list")

	chain := l.Dechain()
	if !l.Empty() {
		t.Fatal("Dechain left packets")
	}
	i := 0
	for m := chain; m != nil; m = m.NextPkt() {
		mustEqual(t, "Dechain", m, model[i])
		i++
	}
	for chain != nil { // back on, one at a time
		next := chain.UnlinkPkt()
		l.Enqueue(chain)
		chain = next
	}
	check("re-Enqueue")
	if n := l.Purge(); n != len(model) || !l.Empty() {
		t.Fatalf("Purge = %d, want %d", n, len(model))
	}
	h, _ := Get(DontWait, MTData)
	l.Enqueue(h)
	if !panicked(func() { l.HDataLen() }) {
		t.Fatal("HDataLen of a packet without a header did not panic")
	}
	l.Purge()
	checkUsage(t, before)
}

// TestQueue: the maximum, the drops and what they free, and the ways out.
func TestQueue(t *testing.T) {
	before := inUse()
	q := NewQueue(2)
	if !q.Empty() || q.Full() || q.MaxLen() != 2 || q.HDataLen() != 0 {
		t.Fatal("a new Queue")
	}
	for i := range 2 {
		if err := q.Enqueue(packet(t, 100+i, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	if !q.Full() || q.Len() != 2 || q.HDataLen() != 100 {
		t.Fatalf("Len %d, Full %v", q.Len(), q.Full())
	}
	err := q.Enqueue(packet(t, 3000, 3)) // dropped and freed
	if !errors.Is(err, ErrQueueFull) || !errors.Is(err, syscall.ENOBUFS) || q.Drops() != 1 || q.Len() != 2 {
		t.Fatalf("Enqueue when full = %v, drops %d, len %d", err, q.Drops(), q.Len())
	}
	if !q.Push(packet(t, 50, 4)) || q.Drops() != 2 || q.Len() != 2 { // drops the oldest
		t.Fatal("Push when full")
	}
	m := q.Dequeue()
	mustEqual(t, "after Push", m, pattern(101, 1))
	m.FreeM()

	// Enlist takes a whole List while below the maximum, past it if need be.
	var l List
	for i := range 3 {
		l.Enqueue(packet(t, 10, byte(10+i)))
	}
	if n := q.Enlist(&l); n != 0 || q.Len() != 4 || !l.Empty() {
		t.Fatalf("Enlist below the maximum: dropped %d, len %d", n, q.Len())
	}
	// And drops a whole List when at it.
	for i := range 2 {
		l.Enqueue(packet(t, 10, byte(20+i)))
	}
	if n := q.Enlist(&l); n != 2 || q.Drops() != 4 || !l.Empty() {
		t.Fatalf("Enlist when full: dropped %d, drops %d", n, q.Drops())
	}
	d := q.Delist()
	if d.Len() != 4 || !q.Empty() {
		t.Fatalf("Delist: %d packets, queue empty %v", d.Len(), q.Empty())
	}
	mustEqual(t, "Delist", d.First(), pattern(50, 4))
	q.SetMaxLen(10)
	q.Enlist(&d)
	chain := q.Dechain()
	if !q.Empty() || chain == nil {
		t.Fatal("Dechain")
	}
	chain.FreeMP()
	q.Enqueue(packet(t, 1, 1))
	q.Enqueue(packet(t, 1, 2))
	if n := q.Purge(); n != 2 || !q.Empty() || q.Drops() != 4 {
		t.Fatalf("Purge = %d, drops %d", n, q.Drops())
	}

	// The zero Queue holds nothing; Push still keeps the packet pushed last.
	var z Queue
	if err := z.Enqueue(packet(t, 1, 1)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("zero Queue Enqueue = %v", err)
	}
	if z.Push(packet(t, 1, 1)) || !z.Push(packet(t, 1, 2)) || z.Len() != 1 || z.Drops() != 2 {
		t.Fatalf("zero Queue Push: len %d, drops %d", z.Len(), z.Drops())
	}
	z.Purge()
	if !panicked(func() { NewQueue(-1) }) {
		t.Fatal("NewQueue(-1) did not panic")
	}
	checkUsage(t, before)
}

// TestQueueConcurrent: producers and consumers on one Queue, under -race: every packet is
// either dequeued or dropped, and nothing leaks.
func TestQueueConcurrent(t *testing.T) {
	before := inUse()
	const producers, each = 4, 200
	q := NewQueue(16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m, err := GetHdr(DontWait, MTData)
				if err != nil {
					t.Error(err)
					return
				}
				m.Extend(copy(m.Tail(), []byte{byte(p), byte(i)}))
				m.FixHdr()
				if i%2 == 0 {
					q.Enqueue(m)
				} else {
					q.Push(m)
				}
			}
		}()
	}
	done := make(chan struct{})
	var cwg sync.WaitGroup
	for range 2 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for {
				m := q.Dequeue()
				if m == nil {
					select {
					case <-done:
						return
					default:
						runtime.Gosched()
						continue
					}
				}
				mu.Lock()
				got++
				mu.Unlock()
				m.FreeM()
			}
		}()
	}
	wg.Wait()
	close(done)
	cwg.Wait()
	got += q.Purge()
	if got+int(q.Drops()) != producers*each {
		t.Fatalf("%d dequeued and %d dropped of %d", got, q.Drops(), producers*each)
	}
	checkUsage(t, before)
}
