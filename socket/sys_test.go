package socket

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIovecSendmsg writes a chain with iovec.sendmsg and sysWritev through a socket
// pair, and checks that the bytes arrive and that a write allocates nothing.
func TestIovecSendmsg(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	sb, all := streamBuf(t, 100, 0, 2000, 1)
	buf := make([]byte, 4096)
	recv := func() []byte {
		t.Helper()
		n, err := sysRead(fds[1], buf)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}

	var v iovec
	v.load(sb.mb, 1<<20)
	if n, err := v.sendmsg(fds[0]); n != len(all) || err != nil {
		t.Fatalf("sendmsg = %d, %v; want %d, nil", n, err, len(all))
	}
	if got := recv(); !bytes.Equal(got, all) {
		t.Fatalf("read %d bytes that differ from the %d sent", len(got), len(all))
	}

	if n, err := sysWritev(fds[0], sb.mb.AppendBuffers(nil)); n != len(all) || err != nil {
		t.Fatalf("sysWritev = %d, %v; want %d, nil", n, err, len(all))
	}
	if got := recv(); !bytes.Equal(got, all) {
		t.Fatalf("read %d bytes that differ from the %d written", len(got), len(all))
	}

	allocs := testing.AllocsPerRun(20, func() {
		var v iovec
		v.load(sb.mb, 1<<20)
		if _, err := v.sendmsg(fds[0]); err != nil {
			t.Fatal(err)
		}
		recv()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per load and sendmsg, want 0", allocs)
	}
}
