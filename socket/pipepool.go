package socket

import (
	"sync"

	"golang.org/x/sys/unix"
)

// pipeSize is the capacity asked of a splice pipe (F_SETPIPE_SZ): how many bytes one
// splice(2) can move. Its pages exist only while bytes are in it.
const pipeSize = 1 << 20

// maxPooled bounds the idle pipes kept for reuse; more are closed.
const maxPooled = 64

// A pipe is a non-blocking pipe for the kernel splice path, and the bytes in it.
type pipe struct {
	r, w int
	n    int // bytes in the pipe
}

func (p *pipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// pipes is the pool: a splice takes a pipe when it has bytes to move and gives it back
// as soon as the pipe is empty, so an idle splice holds none (two fds and up to
// pipeSize of pages each would not scale to thousands of idle connections). A pipe that
// still holds bytes never goes back.
var pipes struct {
	mu   sync.Mutex
	free []*pipe
}

// getPipe returns an empty pipe from the pool or a new one.
func getPipe() (*pipe, error) {
	pipes.mu.Lock()
	if n := len(pipes.free); n > 0 {
		p := pipes.free[n-1]
		pipes.free[n-1] = nil
		pipes.free = pipes.free[:n-1]
		pipes.mu.Unlock()
		return p, nil
	}
	pipes.mu.Unlock()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, pipeSize)
	return &pipe{r: fds[0], w: fds[1]}, nil
}

// putPipe gives an empty pipe back.
func putPipe(p *pipe) {
	if p.n != 0 {
		p.close()
		return
	}
	pipes.mu.Lock()
	if len(pipes.free) < maxPooled {
		pipes.free = append(pipes.free, p)
		p = nil
	}
	pipes.mu.Unlock()
	if p != nil {
		p.close()
	}
}

// drainPipes closes the pooled pipes (tests counting descriptors use it).
func drainPipes() {
	pipes.mu.Lock()
	free := pipes.free
	pipes.free = nil
	pipes.mu.Unlock()
	for _, p := range free {
		p.close()
	}
}
