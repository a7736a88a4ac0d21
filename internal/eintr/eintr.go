// Package eintr makes again the system calls a signal interrupted.
package eintr

import "syscall"

// Retry calls fn until it returns an error other than EINTR, and returns what that call
// returned, as internal/poll's ignoringEINTR does: a Go program sees EINTR whenever a
// signal lands during a system call (the scheduler preempts with SIGURG), and the call
// is simply made again. fn must be safe to repeat, as read, write, sendmsg, splice and
// accept are; connect is not (an interrupted connect goes on in the kernel: wait for it
// as for EINPROGRESS). Retry allocates nothing: fn does not escape.
func Retry[T any](fn func() (T, error)) (T, error) {
	for {
		v, err := fn()
		if err != syscall.EINTR {
			return v, err
		}
	}
}
