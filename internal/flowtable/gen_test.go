package flowtable

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestNodeNeverReusedUnderAReader is uma's TestSMRZoneNeverReusesUnderAReader through the
// table: readers find nodes inside read sections and check, for a while, that the node's
// generation (bumped by the zone's Ctor each time it hands the node out) and its key do
// not change, while the owner deletes and reinserts keys, and rebuilds the table, as fast
// as it can, so that nodes are recycled all the time.
func TestNodeNeverReusedUnderAReader(t *testing.T) {
	tb := newTable(t, nil, 0)
	const space = 256
	keys := make([]netip.AddrPort, space)
	for i := range keys {
		keys[i] = testKey(i)
		tb.Insert(keys[i], &flow{key: keys[i], id: uint64(i)})
	}
	var stop atomic.Bool
	var violations, checks, maxGen atomic.Uint64
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 3))
			s := tb.SMR()
			for !stop.Load() {
				k := keys[r.IntN(space)]
				h := hashKey(tb.seed, k)
				s.Enter()
				if n := tb.findNode(h, k); n != nil {
					gen := n.gen.Load()
					for range 50 {
						if v := n.val.Load(); n.gen.Load() != gen || n.key != k || v != nil && v.key != k {
							violations.Add(1)
							break
						}
					}
					if gen > maxGen.Load() {
						maxGen.Store(gen) // racy maximum; only needs to grow past 1
					}
				}
				s.Exit()
				checks.Add(1)
			}
		})
	}
	wg.Go(func() {
		r := rand.New(rand.NewPCG(rand.Uint64(), 4))
		for op := 0; !stop.Load(); op++ {
			i := r.IntN(space)
			tb.Delete(keys[i])
			if _, _, err := tb.Insert(keys[i], &flow{key: keys[i], id: uint64(op)}); err != nil {
				t.Error(err)
				return
			}
			if op%1000 == 0 {
				// Empty and refill: a shrink, then growths, each freeing a whole array.
				tb.Expire(func(netip.AddrPort, *flow) bool { return true })
				for i, k := range keys {
					tb.Insert(k, &flow{key: k, id: uint64(i)})
				}
			}
		}
	})
	time.Sleep(stressTime())
	stop.Store(true)
	wg.Wait()
	t.Logf("%d checked lookups; a node was handed out up to %d times", checks.Load(), maxGen.Load())
	if v := violations.Load(); v != 0 {
		t.Fatalf("%d of %d lookups saw their node reused inside their section", v, checks.Load())
	}
	if maxGen.Load() < 2 {
		t.Fatal("no reader ever saw a recycled node: the test missed its point")
	}
	checkZone(t, tb)
}

// needTwoPs skips a test whose reader spins in a read section while the owner works, and
// stops the collector meanwhile, since a stop-the-world would wait for the spinning reader.
//
// SetGCPercent(-1) waits for a running cycle's mark phase, but may return while its mark
// termination still runs forEachP, which would wait for the pinned reader as a
// stop-the-world does, while the reader waits for the test: a deadlock, seen here. Mark
// termination holds worldsema until that is done, so a stop-the-world of our own
// (ReadMemStats) waits it out.
func needTwoPs(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two Ps: the reader spins in its section while the owner runs")
	}
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
}

// inSection runs body on another goroutine inside a read section of tb's SMR and holds
// the section open until release is called; it returns once body has run. While the
// section is open the reader spins, pinned to its P, so the caller has the other P to
// itself and does not migrate.
func inSection(tb *Table[flow], body func()) (release func(after func())) {
	var entered, leave atomic.Bool
	var then func()
	done := make(chan struct{})
	go func() {
		s := tb.SMR()
		s.Enter()
		body()
		entered.Store(true)
		for !leave.Load() {
		}
		if then != nil {
			then()
		}
		s.Exit()
		close(done)
	}()
	for !entered.Load() {
		runtime.Gosched()
	}
	return func(after func()) {
		then = after
		leave.Store(true)
		<-done
	}
}

// TestDeletedNodeWaitsForTheReader drives the interleaving by hand: a reader holds a node;
// the owner deletes its key, then inserts and deletes thousands of keys (so the node's
// free bucket fills and is queued) and inserts thousands more; no insert may get that
// node while the reader is in its section. After it leaves, the node comes back.
func TestDeletedNodeWaitsForTheReader(t *testing.T) {
	needTwoPs(t)
	tb := newTable(t, nil, 1<<14) // no rebuild below: only deleted nodes are freed
	victimKey := testKey(0)
	tb.Insert(victimKey, &flow{key: victimKey})
	var victim *node[flow]
	var gen uint64
	release := inSection(tb, func() {
		victim = tb.findNode(hashKey(tb.seed, victimKey), victimKey)
		gen = victim.gen.Load()
	})
	tb.Delete(victimKey)
	insert := func(from, to int) int {
		for i := from; i < to; i++ {
			k := testKey(i)
			tb.Insert(k, &flow{key: k})
			if n := tb.findNode(hashKey(tb.seed, k), k); n == victim {
				return i
			}
		}
		return -1
	}
	if i := insert(1, 4096); i >= 0 {
		release(nil)
		t.Fatalf("insert %d got the node deleted under an open read section", i)
	}
	for i := 1; i < 4096; i++ {
		tb.Delete(testKey(i))
	}
	if i := insert(5000, 9096); i >= 0 {
		release(nil)
		t.Fatalf("insert %d got the node deleted under an open read section", i)
	}
	var changed bool
	release(func() { changed = victim.gen.Load() != gen || victim.key != victimKey })
	if changed {
		t.Fatal("the reader's node changed inside its section")
	}

	tb.SMR().Synchronize()
	if insert(20000, 40000) < 0 {
		t.Fatal("after the section ended, the deleted node never came back")
	}
}

// TestReaderOnADeletedNodeWalksOn: a reader stands on the head of a chain; the owner
// unlinks that node and the next one; the reader, walking on from where it stands, still
// reaches the key after them, since unlinking leaves a node's next pointer alone.
func TestReaderOnADeletedNodeWalksOn(t *testing.T) {
	needTwoPs(t)
	tb := newTable(t, nil, 0) // 8 buckets: three keys in one are easy to find
	a := tb.cur.Load()
	var chain []netip.AddrPort // in insertion order: the last is the head
	for i := 0; len(chain) < 3; i++ {
		if k := testKey(i); hashKey(tb.seed, k)&a.mask == 0 {
			chain = append(chain, k)
		}
	}
	for _, k := range chain {
		tb.Insert(k, &flow{key: k})
	}
	var head *node[flow]
	release := inSection(tb, func() { head = a.heads[0].Load() })
	tb.Delete(chain[2])
	tb.Delete(chain[1])
	var onHead, reached bool
	release(func() {
		onHead = head.key == chain[2]
		for n := head; n != nil; n = n.next.Load() {
			reached = reached || n.key == chain[0]
		}
	})
	if !onHead {
		t.Fatal("the reader did not start on the head of the chain")
	}
	if !reached {
		t.Fatal("a reader on a deleted node could not reach the key after it")
	}
	if _, ok := tb.Lookup(chain[0]); !ok {
		t.Fatal("the last key of the chain was lost")
	}
}
