package netq_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/softnet-go/softnet/netq"
)

// A flow that has more to move than one turn's Budget yields by re-adding its own task,
// so the other flows, timers and fd events of its worker get their turn in between.
func Example() {
	g, err := netq.NewGroup(2)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	w := g.Worker(43) // every piece of work for flow 43 runs on this worker
	fmt.Println("flow 43 runs on worker", w.ID())

	// State owned by the worker: only its callbacks touch it, so it needs no lock.
	const total = 200_000
	moved, turns := 0, 0
	finished := make(chan struct{})
	var move netq.Task
	move.Init(func() {
		moved += min(netq.Budget, total-moved) // move at most Budget bytes per turn
		turns++
		if moved < total {
			w.Add(&move) // yield: continue in the next loop iteration
		} else {
			close(finished)
		}
	})
	// Queue it from the worker itself, so nothing can run it between the two Adds.
	w.Add(netq.NewTask(func() {
		w.Add(&move)
		fmt.Println("added again while queued:", w.Add(&move)) // does nothing
	}))
	<-finished
	fmt.Printf("moved %d bytes in %d turns\n", moved, turns)

	// A timer runs its function on the worker too.
	fired := make(chan struct{})
	var idle netq.Timer
	w.InitTimer(&idle, func() {
		fmt.Println("timer ran on its worker:", netq.Current() == w)
		close(fired)
	})
	idle.Reset(5 * time.Millisecond)
	<-fired

	// Sync waits for the tasks queued before it; on a worker it would deadlock, so it
	// refuses there.
	w.Add(netq.NewTask(func() {
		err := w.Sync(context.Background())
		fmt.Println("Sync on a worker:", err)
	}))
	if err := w.Sync(context.Background()); err != nil {
		log.Fatal(err)
	}
	// Output:
	// flow 43 runs on worker 1
	// added again while queued: false
	// moved 200000 bytes in 4 turns
	// timer ran on its worker: true
	// Sync on a worker: netq: called on a worker
}
