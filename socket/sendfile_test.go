package socket

import (
	"bytes"
	"io"
	"testing"

	"github.com/softnet-go/softnet/mbuf"
)

func TestSendFile(t *testing.T) {
	clean(t)
	c, s := pair(t, "tcp", "127.0.0.1:0")
	data := randBytes(42, 5<<20)
	f := tempFile(t, data)
	hdr, _ := mbuf.GetHdr(mbuf.DontWait, mbuf.MTData)
	hdr.Append([]byte("HTTP/1.1 200 OK\r\n\r\n"), mbuf.DontWait)
	hlen := hdr.Length()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(s)
		got <- b
	}()
	c.Write([]byte("before:"))
	const off, n = 1000, 4 << 20
	sent, err := c.SendFile(f, off, n, hdr)
	if err != nil || sent != int64(hlen+n) {
		t.Fatalf("SendFile = %d, %v; want %d", sent, err, hlen+n)
	}
	c.Write([]byte(":after"))
	// A file shorter than asked ends early without error.
	sent, err = c.SendFile(f, int64(len(data)-10), 100, nil)
	if err != nil || sent != 10 {
		t.Fatalf("short SendFile = %d, %v; want 10", sent, err)
	}
	c.CloseWrite()
	want := append([]byte("before:HTTP/1.1 200 OK\r\n\r\n"), data[off:off+n]...)
	want = append(want, ":after"...)
	want = append(want, data[len(data)-10:]...)
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("received %d bytes, want %d", len(b), len(want))
	}
}
