package eintr

import (
	"errors"
	"syscall"
	"testing"
)

func TestRetry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		errs  []error // what the calls return, in order
		calls int     // calls Retry makes
		err   error
	}{
		{"success", []error{nil}, 1, nil},
		{"an error", []error{syscall.EAGAIN}, 1, syscall.EAGAIN},
		{"EINTR then success", []error{syscall.EINTR, syscall.EINTR, nil}, 3, nil},
		{"EINTR then an error", []error{syscall.EINTR, syscall.EPIPE}, 2, syscall.EPIPE},
		{"a wrapped EINTR is not retried", []error{&wrapped{syscall.EINTR}}, 1, syscall.EINTR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			v, err := Retry(func() (int, error) {
				err := tc.errs[calls]
				calls++
				return calls, err
			})
			if calls != tc.calls || v != tc.calls || !errors.Is(err, tc.err) {
				t.Errorf("Retry: %d calls, %d, %v; want %d calls, %d, %v", calls, v, err, tc.calls, tc.calls, tc.err)
			}
		})
	}
}

// wrapped is an error around an errno, as os.SyscallError is: Retry compares, it does
// not unwrap, as the system-call wrappers return the bare errno.
type wrapped struct{ err error }

func (w *wrapped) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

func TestRetryAllocs(t *testing.T) {
	fd := 7
	n := testing.AllocsPerRun(100, func() {
		first := true
		v, err := Retry(func() (int, error) {
			if first {
				first = false
				return 0, syscall.EINTR
			}
			return fd, nil
		})
		if v != fd || err != nil {
			t.Fatal(v, err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per Retry, want 0", n)
	}
}
