package smr

import (
	"flag"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The harness is a lock-free table of items recycled through per-writer free lists,
// the situation SMR exists for. An item's generation counts its lives: even while it is
// live (published in the table), odd once a writer has unlinked it (dead, then free).
// Reusing an item makes it live again, so a reader that sees an item's generation pass
// g|1 while it is still inside the section that found the item with generation g has
// seen the item reused under it: the violation SMR must prevent.
type item struct {
	gen atomic.Uint64
	// payload is written, plainly, each time the item is reused, and read by readers
	// inside sections. With the correct writer the race detector must see every such
	// read ordered before the next reuse (through Exit and Poll); with the broken writer
	// it stays unused, or the race detector would fail the test before our check does.
	payload uint64
}

// violated reports whether generation g2, read at the end of a section, shows that the
// item found with generation g1 in the same section has been reused meanwhile.
func violated(g1, g2 uint64) bool { return g2 > g1|1 }

// A policy is how a writer decides that an unlinked item may be reused.
type policy int

const (
	reuseAfterGoal policy = iota // the correct writer: Advance, then Poll or Wait
	reuseAtOnce                  // the broken writer: reuse as soon as unlinked
)

type harness struct {
	s       *SMR
	table   []atomic.Pointer[item]
	plain   bool // use item.payload (correct writers only)
	spin    int  // loads of the generation inside each section
	reads   atomic.Int64
	bad     atomic.Int64
	badWhat atomic.Pointer[string] // the first violation, for the failure message
}

func newHarness(s *SMR, slots int, plain bool) *harness {
	h := &harness{s: s, table: make([]atomic.Pointer[item], slots), plain: plain, spin: 64}
	for i := range h.table {
		h.table[i].Store(new(item))
	}
	return h
}

func (h *harness) report(what string) {
	h.bad.Add(1)
	h.badWhat.CompareAndSwap(nil, &what)
}

// read is one reader's lookup: enter, find an item, read it, look again, leave.
func (h *harness) read(i int) {
	h.s.Enter()
	p := h.table[i].Load()
	g1 := p.gen.Load()
	var pl uint64
	if h.plain {
		pl = p.payload
	}
	g2 := g1
	for range h.spin {
		if g2 = p.gen.Load(); violated(g1, g2) {
			break
		}
	}
	h.s.Exit()
	h.reads.Add(1)
	if violated(g1, g2) {
		h.report(fmt.Sprintf("slot %d: generation %d became %d inside one section", i, g1, g2))
	}
	if h.plain && pl != g1&^1 {
		h.report(fmt.Sprintf("slot %d: payload %d of generation %d", i, pl, g1))
	}
}

// reader reads random slots until stop.
func (h *harness) reader(seed uint64, stop *atomic.Bool) {
	x := seed | 1
	for n := 1; !stop.Load(); n++ {
		x ^= x << 13 // xorshift64
		x ^= x >> 7
		x ^= x << 17
		h.read(int(x % uint64(len(h.table))))
		yieldSometimes(n)
	}
}

type pending struct {
	it   *item
	goal Seq
}

// A writer owns some slots of the table and the items that circulate through them.
type writer struct {
	h       *harness
	slots   []int
	policy  policy
	free    []*item   // LIFO: the item freed last is reused first, the worst case
	pending []pending // unlinked items waiting for their goal, oldest first

	recycled, pollMisses, waits int64
}

func (h *harness) newWriter(slots []int, spare int, p policy) *writer {
	w := &writer{h: h, slots: slots, policy: p}
	for range spare {
		it := new(item)
		it.gen.Store(1) // free, like an item that has lived once
		w.free = append(w.free, it)
	}
	return w
}

// replace publishes a fresh item in slot i and frees the one it replaces, FreeBSD
// style: unlink, mark dead, Advance, and reuse only once the goal is met.
func (w *writer) replace(i int) {
	nu := w.alloc()
	g := nu.gen.Add(1) // live again
	if w.h.plain {
		nu.payload = g
	}
	old := w.h.table[i].Swap(nu) // unlink
	old.gen.Add(1)               // dead
	w.recycled++
	if w.policy == reuseAtOnce {
		w.free = append(w.free, old)
		return
	}
	w.pending = append(w.pending, pending{old, w.h.s.Advance()})
}

// alloc takes a reusable item: it retires every pending item whose goal Poll says is met,
// and Waits for the oldest if that leaves none.
func (w *writer) alloc() *item {
	for len(w.pending) > 0 {
		if !w.h.s.Poll(w.pending[0].goal) {
			w.pollMisses++
			break
		}
		w.retire()
	}
	if len(w.free) == 0 {
		w.h.s.Wait(w.pending[0].goal)
		w.waits++
		w.retire()
	}
	it := w.free[len(w.free)-1]
	w.free = w.free[:len(w.free)-1]
	return it
}

func (w *writer) retire() {
	w.free = append(w.free, w.pending[0].it)
	w.pending = append(w.pending[:0], w.pending[1:]...)
}

// run replaces its slots round-robin until stop.
func (w *writer) run(stop *atomic.Bool) {
	for n := 1; !stop.Load(); n++ {
		w.replace(w.slots[n%len(w.slots)])
		yieldSometimes(n)
	}
}

// yieldSometimes yields the P every 64th call. Stress goroutines spend most of their time
// pinned in sections, where the runtime drops preemption requests, so without it the
// scheduler would rotate them slowly and starve the goroutines that change GOMAXPROCS
// or stop the test.
func yieldSometimes(n int) {
	if n%64 == 0 {
		runtime.Gosched()
	}
}

// stressConfig describes one stress run.
type stressConfig struct {
	readers, writers int
	slotsPerWriter   int
	sparePerWriter   int
	policy           policy
	plain            bool
	d                time.Duration
	stopOnViolation  bool
	during           func(stop *atomic.Bool) // runs on its own goroutine, if set
}

type stressResult struct {
	reads, violations           int64
	recycled, pollMisses, waits int64
	firstViolation              string
	elapsed                     time.Duration
}

func (r stressResult) String() string {
	return fmt.Sprintf("%v: %d reads, %d recycles, %d polls not met, %d waits, %d violations",
		r.elapsed.Round(time.Millisecond), r.reads, r.recycled, r.pollMisses, r.waits, r.violations)
}

// stress runs readers and writers over one table for cfg.d (or until the first violation
// if cfg.stopOnViolation) and returns what happened.
func stress(s *SMR, cfg stressConfig) stressResult {
	h := newHarness(s, cfg.writers*cfg.slotsPerWriter, cfg.plain)
	var stop atomic.Bool
	var wg sync.WaitGroup
	writers := make([]*writer, cfg.writers)
	for i := range writers {
		slots := make([]int, cfg.slotsPerWriter)
		for j := range slots {
			slots[j] = i*cfg.slotsPerWriter + j
		}
		writers[i] = h.newWriter(slots, cfg.sparePerWriter, cfg.policy)
		wg.Go(func() { writers[i].run(&stop) })
	}
	for i := range cfg.readers {
		wg.Go(func() { h.reader(uint64(i+1)*0x9e3779b97f4a7c15, &stop) })
	}
	if cfg.during != nil {
		wg.Go(func() { cfg.during(&stop) })
	}
	start := time.Now()
	for time.Since(start) < cfg.d && !(cfg.stopOnViolation && h.bad.Load() > 0) {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	r := stressResult{reads: h.reads.Load(), violations: h.bad.Load(), elapsed: time.Since(start)}
	if p := h.badWhat.Load(); p != nil {
		r.firstViolation = *p
	}
	for _, w := range writers {
		r.recycled += w.recycled
		r.pollMisses += w.pollMisses
		r.waits += w.waits
	}
	return r
}

// stressFor lengthens the stress tests for a soak run:
//
//	go test -race -run Stress ./smr -smr.stress=2m
var stressFor = flag.Duration("smr.stress", 0, "run each stress test for this long (0: about a second)")

// stressTime is how long a stress test runs: -smr.stress if given, else about a second,
// a fifth of it with -short.
func stressTime() time.Duration {
	if *stressFor > 0 {
		return *stressFor
	}
	if testing.Short() {
		return 200 * time.Millisecond
	}
	return time.Second
}

// cpus is the parallelism the stress tests need to be meaningful.
func needCPUs(t *testing.T, n int) {
	t.Helper()
	if runtime.NumCPU() < n {
		t.Skipf("needs %d CPUs, have %d", n, runtime.NumCPU())
	}
}
