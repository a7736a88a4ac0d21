// Package netq provides the softnet workers: event loops that own sockets and run the
// work for them, as OpenBSD's softnet task queues do for the network stack.
//
// A Group has N workers (default GOMAXPROCS). Each Worker is one goroutine with its own
// epoll instance, an eventfd to wake it, an idempotent task queue (task(9)) and a hashed
// timer wheel (timeout(9)). Every fd belongs to one worker for life: its events, and the
// tasks and timers of the flow it carries, all run on that worker's goroutine, one at a
// time, so a flow's state needs no lock against itself. Other goroutines reach a flow
// only by queueing a task on its worker. A flow is mapped to a worker by its flow id,
// Group.Worker(flowid), so both ends of a splice share a worker.
//
// Typical use by a socket layer:
//
//	w := netq.Default().Worker(flowid)
//	s.rtask.Init(s.readMore)           // a Task embedded in the socket
//	w.InitTimer(&s.idle, s.idleExpired) // and a Timer
//	w.Register(fd, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLRDHUP, s) // s.Ready runs on w
//
//	func (s *sock) Ready(ev uint32) { s.w.Add(&s.rtask) } // runs s.readMore next iteration
//	func (s *sock) readMore() {
//		// move at most netq.Budget bytes, then, if there is more, yield:
//		s.w.Add(&s.rtask)
//	}
//
// Adding a task that is already queued does nothing, so wake-ups coalesce; a task that
// re-adds itself goes to the tail and runs in the next iteration, after timers and fd
// events have had their turn. Barrier and Sync wait for the tasks queued before them;
// Sync blocks and so refuses (ErrOnWorker) to run on a worker.
//
// Callbacks must not block: a worker that blocks stalls every flow it owns. A panic in a
// callback crashes the process (see Worker).
package netq
