package uma_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/uma"
)

// Buf is a 2 KiB buffer descriptor; its bytes are carved from the slab.
type Buf struct{ B []byte }

func carveBufs(items []Buf) {
	store := make([]byte, len(items)*2048)
	for i := range items {
		items[i].B = store[i*2048 : (i+1)*2048 : (i+1)*2048]
	}
}

// A zone of 2 KiB buffers under a 64 KiB Limit: one slab. When it is full, Alloc fails
// with ENOBUFS and AllocWait waits until a buffer comes back.
func Example() {
	limit, _ := uma.NewLimit(64 << 10)
	keg, _ := uma.NewKeg(limit, uma.KegConfig[Buf]{Name: "buf", ItemSize: 2048, SlabInit: carveBufs})
	zone, _ := uma.NewZone(keg, uma.ZoneConfig[Buf]{Name: "buf"})

	held := make([]*Buf, 32)
	n, _ := zone.AllocBulk(held)
	fmt.Println("allocated", n, "using", limit.Used(), "bytes")

	_, err := zone.Alloc()
	fmt.Println("one more:", errors.Is(err, syscall.ENOBUFS))

	done := make(chan *Buf)
	go func() {
		b, _ := zone.AllocWait(context.Background())
		done <- b
	}()
	for limit.Stats().Waiters == 0 {
		time.Sleep(time.Millisecond)
	}
	zone.Free(held[0]) // wakes the waiter
	held[0] = <-done
	fmt.Println("the waiter got a buffer of", len(held[0].B), "bytes")

	zone.FreeBulk(held)
	s := zone.Stats()
	fmt.Printf("in use %d, cached %d, requests %d, failures %d, sleeps %d\n",
		s.InUse, s.CachedP+s.CachedZone, s.Requests, s.Failures, s.Sleeps)
	// Output:
	// allocated 32 using 65536 bytes
	// one more: true
	// the waiter got a buffer of 2048 bytes
	// in use 0, cached 32, requests 33, failures 1, sleeps 1
}
