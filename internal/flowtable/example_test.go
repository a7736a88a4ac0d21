package flowtable_test

import (
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/softnet-go/softnet/internal/flowtable"
	"github.com/softnet-go/softnet/uma"
)

// A Flow is what the relay keeps per UDP client. Fields other goroutines read while the
// owner updates them are atomic.
type Flow struct {
	Client   netip.AddrPort
	Packets  atomic.Int64
	LastSeen atomic.Int64 // unix nanoseconds
}

// The owner inserts and expires flows; another goroutine looks them up without a lock.
func Example() {
	limit, _ := uma.NewLimit(64 << 20) // the relay's memory limit, shared with its other zones
	flows, _ := flowtable.New[Flow]("udp-flows", limit, 1024)

	now := time.Unix(1_700_000_000, 0)
	for _, c := range []string{"192.0.2.1:5353", "192.0.2.2:5353", "[2001:db8::7]:4500"} {
		f := &Flow{Client: netip.MustParseAddrPort(c)}
		f.LastSeen.Store(now.UnixNano())
		flows.Insert(f.Client, f)
	}
	// A datagram from a known client: the owner counts it.
	if f, ok := flows.Lookup(netip.MustParseAddrPort("192.0.2.1:5353")); ok {
		f.Packets.Add(1)
		f.LastSeen.Store(now.Add(50 * time.Second).UnixNano())
	}

	// Another worker, concurrently: no lock, no allocation.
	var wg sync.WaitGroup
	wg.Go(func() {
		f, ok := flows.Lookup(netip.MustParseAddrPort("192.0.2.1:5353"))
		fmt.Println("reader:", f.Client, ok, f.Packets.Load())
	})
	wg.Wait()

	// The owner's idle timer fires a minute later: flows silent for 30 s expire.
	tick, idle := now.Add(time.Minute), 30*time.Second
	n := flows.Expire(func(_ netip.AddrPort, f *Flow) bool {
		return tick.Sub(time.Unix(0, f.LastSeen.Load())) > idle
	})
	fmt.Println("expired:", n)

	// The admin endpoint lists what is left.
	var left []string
	flows.Range(func(k netip.AddrPort, f *Flow) bool {
		left = append(left, fmt.Sprintf("%v packets=%d", k, f.Packets.Load()))
		return true
	})
	sort.Strings(left)
	fmt.Println("left:", left)

	s := flows.Stats()
	fmt.Println("entries:", s.Len, "buckets:", s.Buckets, "nodes in use:", s.Zone.InUse)
	// Output:
	// reader: 192.0.2.1:5353 true 1
	// expired: 2
	// left: [192.0.2.1:5353 packets=1]
	// entries: 1 buckets: 1024 nodes in use: 1
}

// An owner that recycles its flows through a zone makes it an SMR zone on the table's SMR,
// so that a flow is not reused while a reader may still hold it; readers then use a flow
// only inside a read section, which LookupInSection does not open on its own.
func ExampleTable_LookupInSection() {
	limit, _ := uma.NewLimit(0)
	flows, _ := flowtable.New[Flow]("udp-flows", limit, 0)
	keg, _ := uma.NewKeg(limit, uma.KegConfig[Flow]{Name: "flow"})
	zone, _ := uma.NewZone(keg, uma.ZoneConfig[Flow]{
		Name: "flow",
		SMR:  flows.SMR(), // the same SMR as the table's readers
		Ctor: func(f *Flow) error { f.Packets.Store(0); f.LastSeen.Store(0); return nil },
	})

	client := netip.MustParseAddrPort("198.51.100.9:4242")
	f, _ := zone.Alloc()
	f.Client = client
	f.Packets.Store(42)
	flows.Insert(client, f)

	// A reader keeps the flow for as long as its section lasts.
	s := flows.SMR()
	s.Enter()
	if f, ok := flows.LookupInSection(client); ok {
		n := f.Packets.Load() // f cannot be recycled before Exit
		s.Exit()
		fmt.Println(client, "packets:", n)
	} else {
		s.Exit()
	}

	// The owner deletes the flow and frees it to the zone, which reuses it only after
	// every section that could have found it has ended.
	if f, ok := flows.Delete(client); ok {
		zone.Free(f)
	}
	fmt.Println("flows:", flows.Len(), "in use:", zone.Stats().InUse)
	// Output:
	// 198.51.100.9:4242 packets: 42
	// flows: 0 in use: 0
}
