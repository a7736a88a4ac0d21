// Command zone shows the uma allocator at work: two zones of buffers under one shared
// memory Limit, an allocation that waits at the limit and is woken when the other zone
// gives memory back, and the statistics that account for every item and byte.
//
//	go run ./examples/zone
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/softnet-go/softnet/uma"
)

// cluster is a buffer descriptor whose bytes are carved from its slab.
type cluster struct{ buf []byte }

func zoneOf(l *uma.Limit, name string, size int) *uma.Zone[cluster] {
	k, err := uma.NewKeg(l, uma.KegConfig[cluster]{
		Name:     name,
		ItemSize: int64(size),
		SlabInit: func(items []cluster) {
			store := make([]byte, len(items)*size)
			for i := range items {
				items[i].buf = store[i*size : (i+1)*size : (i+1)*size]
			}
		},
	})
	if err != nil {
		panic(err)
	}
	z, err := uma.NewZone(k, uma.ZoneConfig[cluster]{Name: name})
	if err != nil {
		panic(err)
	}
	return z
}

func main() {
	limit, _ := uma.NewLimit(1 << 20) // 1 MiB shared by both zones
	small := zoneOf(limit, "cluster_2k", 2048)
	large := zoneOf(limit, "cluster_16k", 16384)

	// Fill the limit with 16 KiB clusters.
	var held []*cluster
	for {
		c, err := large.Alloc()
		if errors.Is(err, syscall.ENOBUFS) {
			fmt.Printf("16k zone: %d clusters fill the %d KiB limit; the next one fails: %v\n",
				len(held), limit.Max()>>10, err)
			break
		}
		held = append(held, c)
	}

	// A 2 KiB allocation now waits, and is woken when the other zone frees a slab.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan time.Time)
	go func() {
		c, err := small.AllocWait(ctx)
		if err != nil {
			panic(err)
		}
		got <- time.Now()
		small.Free(c)
	}()
	for limit.Stats().Waiters == 0 {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("2k zone: an allocation is waiting at the limit")
	start := time.Now()
	for _, c := range held[:4] { // 4 × 16 KiB: one 64 KiB slab of the 16k zone
		large.Free(c)
	}
	woke := <-got
	fmt.Printf("16k zone freed one slab; the 2k waiter woke %v later\n\n", woke.Sub(start).Round(time.Microsecond))
	large.FreeBulk(held[4:])

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "zone\tin use\tcached/P\tcached/zone\trequests\tfailures\tsleeps\t")
	for _, z := range []*uma.Zone[cluster]{small, large} {
		s := z.Stats()
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", s.Name, s.InUse, s.CachedP, s.CachedZone, s.Requests, s.Failures, s.Sleeps)
	}
	tw.Flush()
	ls := limit.Stats()
	fmt.Printf("\nlimit: %d KiB used of %d KiB, peak %d KiB, %d slab charges refused, %d wake-up runs\n",
		ls.Used>>10, ls.Max>>10, ls.Peak>>10, ls.Refused, ls.Wakeups)
	limit.Reclaim()
	fmt.Printf("after Reclaim: %d KiB used\n", limit.Used()>>10)
}
