package socket

import (
	"sync/atomic"

	"github.com/softnet-go/softnet/mbuf"
	"github.com/softnet-go/softnet/netq"
)

// The thresholds of SpliceAuto and of the sparse queue. They are variables only so that
// the benchmarks can measure other values; nothing changes them while splices run.
var (
	// autoPromote is how many input reads in a row must fill the input budget
	// (netq.Budget) or the receive sockbuf before an auto splice takes the kernel path:
	// three, HAProxy's count for a fast streamer. BenchmarkAutoThreshold measures 1, 3
	// and 8 on flows of 256 KiB and 4 MiB.
	autoPromote = 3
	// autoDemote is how many kernel turns in a row must take little from the source
	// (more than nothing, less than autoSmall) before an auto splice goes back to the
	// user path: three, HAProxy's count of reads of at most half a buffer.
	autoDemote = 3
)

// autoSmall is what a kernel turn must take from the source, at least, not to count as
// quiet: half the user path's input budget, as HAProxy counts a read of at most half a
// buffer as small.
const autoSmall = netq.Budget / 2

// sparseQuantum is the bytes a turn of the splice task may move and still have the task
// queued on the worker's sparse queue (netq.Worker.AddSparse): one cluster, MCLBYTES.
// A 64-byte request, a handshake or a small HTTP request moves less and is served
// before the bulk passes of the same loop iteration; a flow that moved a cluster or more
// (a bulk flow that used its budget) waits its turn behind the others (Add), as
// FQ-CoDel's quantum decides between its new and old flows.
const sparseQuantum = mbuf.MCLBytes

// Counters of auto splice switches, for tests and benchmarks.
var autoPromotions, autoDemotions atomic.Int64

// inputRead is called by input, with so.rcv.mu held, after a read of n bytes of at most
// limit while so is the source of a splice: it counts the reads of an auto splice on the
// user path that filled the input budget or the receive sockbuf, and promotes the splice
// to the kernel path after autoPromote of them in a row. From then on input queues the
// splice task instead of reading (the kernel path moves what is in rcv first).
func (sp *sosplice) inputRead(sb *sockbuf, n int) {
	if !sp.auto || sp.kernel || n <= 0 {
		return
	}
	if n >= netq.Budget || sb.space() <= 0 {
		sp.large++
	} else {
		sp.large = 0
	}
	if sp.large >= autoPromote {
		sp.promote()
	}
}

// promote moves an auto splice to the kernel path. so.rcv.mu is held. The buffers are
// grown by the first kernel turn, which holds the drain's lock too.
func (sp *sosplice) promote() {
	sp.kernel = true
	sp.large, sp.small = 0, 0
	autoPromotions.Add(1)
}

// kernelTurn is called at the end of a kernel turn of an auto splice that goes on, with
// so.rcv.mu and dst.snd.mu held: read is what the turn took from the source, drained
// whether it found the source empty (a short read, EAGAIN or EOF). After autoDemote
// quiet turns in a row, with the pipe empty, the splice goes back to the user path: its
// borrowed buffers go back, and input is queued, since the kernel path may have stopped
// before the source said EAGAIN and no new edge may come.
func (so *Socket) kernelTurn(sp *sosplice, dst *Socket, read int, drained bool) {
	if !sp.auto {
		return
	}
	switch {
	case sp.pipe != nil || read >= autoSmall:
		sp.small = 0 // bulk, or held back by the drain
	case read > 0 && drained:
		sp.small++
	}
	if sp.small < autoDemote || sp.pipe != nil {
		return
	}
	sp.kernel = false
	sp.large, sp.small = 0, 0
	sp.grown.giveBack(so, dst)
	autoDemotions.Add(1)
	so.w.Add(&so.inTask)
}
