package socket

import (
	"sync"

	"github.com/softnet-go/softnet/netq"
)

// A wstate is the socket layer's per-worker scratch: the message arrays of the batched
// system calls a worker makes (recvmmsg, sendmmsg), used only on that worker's
// goroutine, so a socket holds none of them while idle. (A stream's sendmsg vector is
// small enough for the output routine's own frame: iovec.)
type wstate struct {
	udp *udpScratch // made on the first UDP input or output
}

var wstates sync.Map // *netq.Worker → *wstate

func workerState(w *netq.Worker) *wstate {
	if v, ok := wstates.Load(w); ok {
		return v.(*wstate)
	}
	v, _ := wstates.LoadOrStore(w, &wstate{})
	return v.(*wstate)
}
