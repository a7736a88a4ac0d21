// Package netq provides the softnet workers: event loops that own sockets and run the
// work for them, as OpenBSD's softnet task queues do for the network stack.
//
// A Group has N workers (default GOMAXPROCS). Each Worker is one goroutine with its own
// epoll instance, an idempotent task queue (task(9)) and a hashed timer wheel
// (timeout(9)). Every fd belongs to one worker for life: its events, and the
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
//
// # Sleeping and waking
//
// A worker with nothing to do blocks in epoll_wait(2) on its goroutine, until an fd
// event, the tick of its earliest timer, or a write to its eventfd by an Add or Reset
// that found it sleeping. That is a blocking system call: the kernel wakes the worker's
// own thread, which goes on with its P unless the runtime gave the P to another thread
// meanwhile (it does so only when other goroutines wait for one).
//
// The alternatives were measured, and lost where it counts. Parking the loop on the Go
// runtime's network poller instead (the epoll instance is itself pollable: open it as a
// non-blocking *os.File and wait in RawConn.Read, harvesting with a zero timeout; the
// next timer is the read deadline, and Add wakes the loop by expiring the deadline, a
// wake-up without a system call) wins inside one process, where the waker is a
// goroutine. Median round trip through one worker, in µs, the variants interleaved in
// chunks of 32 round trips so that load from elsewhere hits them alike (2 vCPUs, load
// average 7 from other jobs, so absolute figures are high and the ratios count):
//
//	                              block  spin  park  park+deadline  spin+park
//	fd, back to back               17.8  45.4  17.0       15.9         46.8
//	fd, 200µs apart                38.5  77.9  31.2       32.1         66.9
//	Add, back to back              24.8   3.2   8.2        2.2          3.1
//	Add, 200µs apart               98.0  38.7  19.1        9.1         30.4
//
// block is this loop; spin polls epoll_wait(2) with a zero timeout and yields for up to
// 30µs after the last work before blocking; park is the netpoller park woken by an
// eventfd write; park+deadline wakes by the deadline; spin+park spins, then parks.
// Measured at commit 7510258, which had the variants behind a test knob, with
//
//	go test -run '^$' -bench WakeCompare -benchtime 1600x -count 2 ./netq/
//
// (the first of two runs; the second ranked them alike). Spinning loses on two cores:
// the spinning worker holds the P, or the core, that whoever it waits for needs.
//
// But a relay's wake-ups are fd events from other processes, and there the park costs
// more than it saves. spliced --mode user on loopback, one connection, 64-byte requests
// to an echo server, the relays (built at commit 16d43f2) measured in turn, 16 rounds
// of 400ms each: the round trip added to the direct one at the median, and the relay
// process's CPU per request (from /proc/PID/stat):
//
//	spliced, this loop            56.7µs   49µs CPU
//	spliced, park+deadline        71.3µs   76µs CPU (commit a49959f)
//	spliced --mode iocopy         61.9µs   61µs CPU (Go's io.Copy)
//	HAProxy                       60.0µs
//
// and five earlier runs agreed on the ranking of the two spliced loops (the park's
// median 3µs to 29µs worse), though the park had the better 99th percentile in four of
// the six. The likely reason, which the CPU figures bear out: a parked goroutine is
// woken by whichever thread polls the runtime's epoll, which must find the worker a P
// and then wakes another thread to look for more work; a thread blocked in
// epoll_wait(2) is woken directly and carries on with its P. So the loop blocks, and a
// wake-up by Add pays an eventfd write and a thread wake-up, which in a relay are rare
// (a flow's fds and tasks share a worker). BenchmarkWake measures the loop as it is:
//
//	go test -run '^$' -bench Wake -count 3 ./netq/
//
// Idle, a group of workers uses no CPU: each is a thread blocked in epoll_wait(2), and
// nothing spins (TestIdleCPU).
package netq
