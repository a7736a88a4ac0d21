package socket

import (
	"github.com/softnet-go/softnet/netq"
)

// sosplice is OpenBSD's struct sosplice: the splice state of a socket, made on its first
// Splice and kept for its life. A socket may be the source of one splice (drain set) and
// the drain of another (soback set) at once.
type sosplice struct {
	so     *Socket
	drain  *Socket // ssp_socket: set on the source while spliced
	soback *Socket // ssp_soback: set on the drain while spliced
	len    int64   // ssp_len
	max    int64   // ssp_max
	kernel bool
	task   netq.Task
}

// queue queues the splice task on the source's worker.
func (sp *sosplice) queue() {
	if sp == nil {
		return
	}
	sp.so.w.Add(&sp.task)
}

// release frees what the splice record holds when its socket is destroyed.
func (sp *sosplice) release(so *Socket) { sp.drain, sp.soback = nil, nil }

// unspliceAll dissolves the splices the socket is part of (Close).
func (so *Socket) unspliceAll() {}
