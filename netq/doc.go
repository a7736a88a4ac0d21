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
// A worker with nothing to do sleeps the way a goroutine waiting for a socket does: it
// parks on the Go runtime's network poller. Its epoll instance is itself pollable (it is
// readable when it has events), so it is opened as a non-blocking *os.File and the loop
// waits in RawConn.Read, whose function harvests with epoll_wait(2) and a zero timeout;
// Read parks the goroutine only when that harvest found nothing. An event then makes the
// runtime's epoll report the worker's, and the runtime readies the goroutine, like any
// other it polls for. The next timer's tick is the file's read deadline. Add and Reset
// wake a sleeping worker by moving that deadline into the past, which the runtime turns
// into a direct wake-up of the goroutine: no system call and no eventfd. The sleeping
// flag, set under the worker's mutex when it decides to sleep and cleared by the one
// waker that finds it set, keeps wake-ups neither lost nor repeated: a deadline expired
// before the loop parks makes the Read return at once.
//
// The loop used to block in epoll_wait(2) on its goroutine, with an eventfd to wake it:
// a blocking system call, so the kernel woke the worker's thread, which then had to
// find a P again, and every wake-up by Add cost an eventfd write. Measured side by side,
// interleaved in chunks of 32 round trips so that load from elsewhere hits every
// variant alike (2 vCPUs, load average 7 from other jobs, so absolute figures are high
// and the ratios are what counts), median round trip through one worker, in µs:
//
//	                              block  spin  park  park+deadline  spin+park
//	fd, back to back               17.8  45.4  17.0       15.9         46.8
//	fd, 200µs apart                38.5  77.9  31.2       32.1         66.9
//	Add, back to back              24.8   3.2   8.2        2.2          3.1
//	Add, 200µs apart               98.0  38.7  19.1        9.1         30.4
//
// block is the old loop; spin polls epoll_wait(2) with a zero timeout and yields, for up
// to 30µs after the last work, before blocking; park is the netpoller park woken by an
// eventfd write; park+deadline is the loop now; spin+park spins, then parks. The 90th
// percentile of "fd, 200µs apart" went from 126µs (block) to 69µs, and the process's CPU
// per round trip fell with it (Add back to back: 29µs of CPU for block, 4µs now).
// Spinning loses on two cores: the spinning worker holds the P that the goroutine (or
// process) it waits for needs, and burns CPU that an idle relay must not. The figures are
// the first of two runs (the second ranked the variants alike) at commit 7510258, which
// had the variants behind a test knob:
//
//	go test -run '^$' -bench WakeCompare -benchtime 1600x -count 2 ./netq/
//
// BenchmarkWake measures the loop as it is (go test -run '^$' -bench Wake ./netq/).
//
// The trade-offs: a wake-up by an fd event costs the runtime's epoll_wait and then the
// worker's (two harvests where there was one), which the saved thread hand-off more than
// pays for; a worker's events are noticed when the runtime polls, which it does whenever
// a P runs out of work, and at worst every 10ms from sysmon when every P is busy with
// goroutines that never block (as for every socket in a Go program, and a worker per P
// is not such a goroutine); and a timer's deadline is a runtime timer, so a timer fires
// at its tick plus the scheduler's latency, within the 1ms resolution Timer promises.
// Idle, a group of workers uses no CPU: each is a parked goroutine (TestIdleCPU).
package netq
