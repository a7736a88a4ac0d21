package netq

import (
	"math"
	"math/bits"
	"time"
)

// The wheel: one slot per tick, wheelSize slots, so timers more than a turn ahead share
// slots with nearer ones and wait for their turn (see wheel).
const (
	tick      = time.Millisecond
	wheelBits = 11
	wheelSize = 1 << wheelBits // slots: one turn of the wheel is ~2 s
	wheelMask = wheelSize - 1
)

// A Timer runs a function on its worker once a duration has passed: OpenBSD's struct
// timeout (timeout(9)). Like Task it is intrusive, so arming it allocates nothing; embed
// it in the object it works for. A Timer belongs to the worker that initialized it.
//
// Resolution: 1 ms. Each worker keeps its timers in a hashed timer wheel of 1 ms ticks
// (2048 slots, one turn about 2 s; longer timers wait in their slot for their turn). A
// timer fires at the first tick boundary at or after its deadline: never early, and on
// an idle worker at most about a tick plus the wake-up latency late; a busy worker fires
// it at the start of its next loop iteration. The loop sleeps until the earliest pending
// timer's tick, not tick by tick, so pending timers cost no wake-ups of their own.
type Timer struct {
	next, prev *Timer  // list links; the head's prev is the tail
	head       **Timer // the wheel slot or firing list holding t, nil if not pending
	when       int64   // expiry, in ticks of mono()
	w          *Worker
	fn         func()
}

// InitTimer is timeout_set(9): it makes t a timer of w that runs fn on w. It must not be
// called while t is pending.
func (w *Worker) InitTimer(t *Timer, fn func()) {
	t.w, t.fn = w, fn
}

// Reset (re)arms t to run once after d (d <= 0 means at the next tick), replacing any
// pending expiry: timeout_add_nsec(9), which also re-arms a pending timeout. It is safe
// from any goroutine, including callbacks of t itself (a periodic timer re-arms itself)
// and does not allocate. If t has already been taken off the wheel to run, it runs and
// then runs again after d. On a closed group Reset does nothing.
func (t *Timer) Reset(d time.Duration) {
	w := t.w
	if w == nil {
		panic("netq: Reset of a Timer not set up with InitTimer")
	}
	d = min(max(d, 0), math.MaxInt64/4) // far enough: keeps the sum below from overflowing
	when := (mono() + int64(d) + int64(tick) - 1) / int64(tick)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	wh := &w.wheel
	if t.head != nil {
		wh.remove(t)
	}
	// Never into a tick already processed: that slot's next visit is a turn away. This
	// also keeps a timer that re-arms itself with 0 from running twice in one pass.
	wh.insert(t, max(when, wh.done+1))
	if t.when < wh.wakeAt {
		w.wakeLocked()
	}
}

// Stop is timeout_del(9): it disarms t and reports whether t was pending. If it returns
// true, t's function will not run for that arming, even if the deadline has passed and
// the worker is about to fire it; if it returns false, t had not been armed, had already
// fired, or is running now (Stop does not wait for it).
func (t *Timer) Stop() bool {
	w := t.w
	if w == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if t.head == nil {
		return false
	}
	w.wheel.remove(t)
	return true
}

// wheel is a hashed timer wheel: slot when%wheelSize holds the timers expiring at ticks
// congruent to it, in arming order; a bitmap marks the non-empty slots, and mins[s] is a
// lower bound of the expiries in slot s (exact after the slot is walked; a removal can
// leave it low, which costs at most one wasted visit). With them the loop sleeps until
// the earliest expiry, not until the next non-empty slot, and passes over slots whose
// timers are due in a later turn without walking them. All fields are guarded by the
// worker's mu.
type wheel struct {
	slots  [wheelSize]*Timer
	mins   [wheelSize]int64
	bits   [wheelSize / 64]uint64
	firing *Timer // timers taken off the wheel by this pass, in expiry order
	n      int    // timers in slots
	done   int64  // last tick processed
	wakeAt int64  // tick the sleeping loop wakes at (math.MaxInt64: only when woken)
}

func (wh *wheel) insert(t *Timer, when int64) {
	t.when = when
	s := when & wheelMask
	if wh.slots[s] == nil || when < wh.mins[s] {
		wh.mins[s] = when
	}
	t.link(&wh.slots[s])
	wh.bits[s>>6] |= 1 << (s & 63)
	wh.n++
}

// remove takes t off the wheel or the firing list.
func (wh *wheel) remove(t *Timer) {
	if t.head == &wh.firing {
		t.unlink()
		return
	}
	s := t.when & wheelMask
	t.unlink()
	if wh.slots[s] == nil {
		wh.bits[s>>6] &^= 1 << (s & 63)
	}
	wh.n--
}

// expire moves the timers due at tick T from T's slot to the firing list.
func (wh *wheel) expire(T int64) {
	s := T & wheelMask
	if wh.mins[s] > T {
		return // all due in a later turn
	}
	low := int64(math.MaxInt64)
	for t := wh.slots[s]; t != nil; {
		next := t.next
		if t.when <= T {
			t.unlink()
			wh.n--
			t.link(&wh.firing)
		} else {
			low = min(low, t.when)
		}
		t = next
	}
	wh.mins[s] = low
	if wh.slots[s] == nil {
		wh.bits[s>>6] &^= 1 << (s & 63)
	}
}

// next returns the distance from slot from%wheelSize to the next non-empty slot (0 if
// that slot itself is non-empty), and false if the wheel is empty.
func (wh *wheel) next(from int64) (int64, bool) {
	s := int(from & wheelMask)
	word, bit := s>>6, uint(s&63)
	if m := wh.bits[word] >> bit; m != 0 {
		return int64(bits.TrailingZeros64(m)), true
	}
	for i := 1; i <= len(wh.bits); i++ { // the last round rechecks word's low bits
		wi := (word + i) % len(wh.bits)
		if m := wh.bits[wi]; m != 0 {
			return int64((wi*64 + bits.TrailingZeros64(m) - s) & wheelMask), true
		}
	}
	return 0, false
}

// sleep returns how long the loop may sleep, in epoll_wait milliseconds, and records the
// tick it will wake at so that Reset wakes it only for an earlier timer. It looks at the
// non-empty slots in tick order and stops as soon as no later slot can hold an earlier
// expiry, which is at the first slot when its timers are due this turn.
func (wh *wheel) sleep(now int64) int {
	from, best := wh.done+1, int64(math.MaxInt64)
	for d := int64(0); d < wheelSize && from+d < best; d++ {
		dd, ok := wh.next(from + d)
		if !ok || d+dd >= wheelSize {
			break
		}
		d += dd
		best = min(best, max(wh.mins[(from+d)&wheelMask], from+d))
	}
	wh.wakeAt = best
	if best == math.MaxInt64 {
		return -1
	}
	return sleepMillis(best*int64(tick) - now)
}

// advance processes the ticks up to now, moving due timers to the firing list in expiry
// order. It visits only non-empty slots. After a stall of more than a turn (the process
// was stopped) it skips to the last turn: every overdue timer is still found, in slot
// order rather than strict expiry order.
func (wh *wheel) advance(now int64) {
	cur := now / int64(tick)
	if wh.n == 0 || cur <= wh.done {
		wh.done = max(wh.done, cur)
		return
	}
	T := max(wh.done+1, cur-wheelMask)
	for T <= cur {
		d, ok := wh.next(T)
		if !ok || T+d > cur {
			break
		}
		T += d
		wh.expire(T)
		T++
	}
	wh.done = cur
}

// clear forgets every timer (Close).
func (wh *wheel) clear() {
	for i := range wh.slots {
		for wh.slots[i] != nil {
			wh.slots[i].unlink()
		}
	}
	for wh.firing != nil {
		wh.firing.unlink()
	}
	wh.bits = [wheelSize / 64]uint64{}
	wh.n = 0
}

// runTimers fires the timers that begin found due (step 1). Each is unlinked under mu and
// run without it, so Stop and Reset keep working on the ones not yet run.
func (w *Worker) runTimers() {
	w.mu.Lock()
	for {
		t := w.wheel.firing
		if t == nil {
			w.mu.Unlock()
			return
		}
		t.unlink()
		fn := t.fn
		w.mu.Unlock()
		fn()
		w.mu.Lock()
	}
}

// link appends t to the list at head.
func (t *Timer) link(head **Timer) {
	t.head, t.next = head, nil
	if first := *head; first == nil {
		*head, t.prev = t, t
	} else {
		last := first.prev
		last.next, t.prev, first.prev = t, last, t
	}
}

// unlink removes t from its list.
func (t *Timer) unlink() {
	first := *t.head
	if first == t {
		*t.head = t.next
	} else {
		t.prev.next = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else if first != t {
		first.prev = t.prev
	}
	t.next, t.prev, t.head = nil, nil, nil
}
