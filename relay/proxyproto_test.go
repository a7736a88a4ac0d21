package relay

import (
	"bytes"
	"net"
	"testing"
)

func TestProxyHeader(t *testing.T) {
	c4 := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 56324}
	s4 := &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 443}
	c6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1000}
	if got, want := string(proxyHeader(ProxyV1, c4, s4)), "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"; got != want {
		t.Errorf("v1 tcp4: %q, want %q", got, want)
	}
	if got, want := string(proxyHeader(ProxyV1, c6, s4)), "PROXY TCP6 2001:db8::1 ::ffff:198.51.100.7 1000 443\r\n"; got != want {
		t.Errorf("v1 mixed: %q, want %q", got, want)
	}
	// A link-local client's zone stays out of the header; the longest header fits the
	// 107 bytes the protocol allows.
	ll := &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "6", Port: 1000}
	lls := &net.TCPAddr{IP: net.ParseIP("fe80::2"), Zone: "6", Port: 443}
	if got, want := string(proxyHeader(ProxyV1, ll, lls)), "PROXY TCP6 fe80::1 fe80::2 1000 443\r\n"; got != want {
		t.Errorf("v1 link-local: %q, want %q", got, want)
	}
	long := &net.TCPAddr{IP: net.ParseIP("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Zone: "eth0", Port: 65535}
	if h := proxyHeader(ProxyV1, long, long); len(h) > 107 {
		t.Errorf("v1 header of %d bytes, over 107: %q", len(h), h)
	}
	if got, want := string(proxyHeader(ProxyV1, &net.UDPAddr{}, s4)), "PROXY UNKNOWN\r\n"; got != want {
		t.Errorf("v1 unknown: %q", got)
	}
	want := append(proxyV2Sig[:], 0x21, 0x11, 0, 12, 192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb)
	if got := proxyHeader(ProxyV2, c4, s4); !bytes.Equal(got, want) {
		t.Errorf("v2 tcp4: % x\nwant      % x", got, want)
	}
	if got := proxyHeader(ProxyV2, c6, c6); len(got) != 16+36 || got[13] != 0x21 || got[15] != 36 {
		t.Errorf("v2 tcp6: % x", got)
	}
}
