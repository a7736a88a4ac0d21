package socket

import (
	"sync"

	"github.com/softnet-go/softnet/netq"
)

// A wstate is the socket layer's per-worker scratch: iovec and message arrays for the
// system calls a worker makes, used only on that worker's goroutine, so a socket holds
// none of them while idle.
type wstate struct {
	iov [][]byte
	udp *udpScratch // made on the first UDP input or output
}

var wstates sync.Map // *netq.Worker → *wstate

func workerState(w *netq.Worker) *wstate {
	if v, ok := wstates.Load(w); ok {
		return v.(*wstate)
	}
	v, _ := wstates.LoadOrStore(w, &wstate{iov: make([][]byte, 0, maxIov)})
	return v.(*wstate)
}

// iovec returns an empty iovec array for an output pass: the worker's own when running on
// it, else a fresh one (after the group has closed, a Close finishes inline).
func (so *Socket) iovec() [][]byte {
	if so.w.OnWorker() {
		return workerState(so.w).iov[:0]
	}
	return make([][]byte, 0, maxIov)
}
