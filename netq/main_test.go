package netq

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	// The runtime opens its own poller's fds on first use of an os.File; do that now so
	// that the fd counts taken around each test see only netq's fds.
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	r.Close()
	w.Close()
	goleak.VerifyTestMain(m)
}

func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// group starts n workers for one test. When the test ends it closes them and checks that
// no goroutine and no fd outlives the test's groups.
func group(t *testing.T, n int) *Group {
	t.Helper()
	if _, seen := leakChecked.LoadOrStore(t, true); !seen {
		// Registered before the first group's Close, so it runs after every Close.
		before := countFDs(t)
		t.Cleanup(func() {
			leakChecked.Delete(t)
			goleak.VerifyNone(t)
			if after := countFDs(t); after != before {
				t.Errorf("%d fds open before NewGroup, %d after Close", before, after)
			}
		})
	}
	g, err := NewGroup(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return g
}

var leakChecked sync.Map // *testing.T whose leak check group has registered

// wait fails the test if ch is not closed (or sent on) within d.
func wait(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
	}
}

// syncAll waits until every worker of g has run the tasks queued so far.
func syncAll(t *testing.T, g *Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, w := range g.Workers() {
		if err := w.Sync(ctx); err != nil {
			t.Fatalf("Sync(worker %d): %v", w.ID(), err)
		}
	}
}

// block queues a task that holds w until the returned function is called, and waits
// until it holds it, so that tasks added meanwhile stay queued.
func block(t *testing.T, w *Worker) (release func()) {
	t.Helper()
	held, done := make(chan struct{}), make(chan struct{})
	w.Add(NewTask(func() {
		close(held)
		<-done
	}))
	wait(t, held, 5*time.Second, "blocking task started")
	return func() { close(done) }
}

// socketpair returns a connected non-blocking AF_UNIX stream pair, closed at test end.
func socketpair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	return fds[0], fds[1]
}

// subprocess runs test (a TestXxx of this package) in a child process with env set,
// and returns its combined output and error.
func subprocess(t *testing.T, test, env string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env)
	return cmd.CombinedOutput()
}
