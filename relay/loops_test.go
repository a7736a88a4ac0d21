package relay

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckHostRefusesLoops(t *testing.T) {
	r := func(name, listen string, targets ...string) RelayConfig {
		return RelayConfig{Name: name, Protocol: "tcp", Listen: listen, Targets: targets}
	}
	tests := []struct {
		name   string
		relays []RelayConfig
		admin  string
		want   []string // substrings of the error, in order; none: valid
	}{
		{name: "own address", relays: []RelayConfig{r("x", "127.0.0.1:7001", "127.0.0.1:7001")},
			want: []string{`relay "x": targets = "127.0.0.1:7001": leads back to this relay's own listen address`}},
		{name: "wildcard listener, loopback target", relays: []RelayConfig{r("x", "0.0.0.0:7001", "127.0.0.2:7001")},
			want: []string{`leads back to this relay's own listen address "0.0.0.0:7001"`}},
		{name: "empty host, IPv6 loopback target", relays: []RelayConfig{r("x", ":7001", "[::1]:7001")},
			want: []string{"leads back"}},
		{name: "one of several targets", relays: []RelayConfig{r("x", "127.0.0.1:7001", "127.0.0.1:9", "localhost:7001")},
			want: []string{`targets = "localhost:7001": leads back`}},
		{name: "ring of two", relays: []RelayConfig{r("x", "127.0.0.1:7001", "127.0.0.1:7002"), r("y", "127.0.0.1:7002", "127.0.0.1:7001")},
			want: []string{`relay "x": targets = "127.0.0.1:7002": leads back to this relay through 127.0.0.1:7002 → 127.0.0.1:7001`,
				`relay "y": targets = "127.0.0.1:7001": leads back to this relay through 127.0.0.1:7001 → 127.0.0.1:7002`}},
		{name: "ring of three", relays: []RelayConfig{r("x", "127.0.0.1:7001", "127.0.0.1:7002"), r("y", "127.0.0.1:7002", "127.0.0.1:7003"),
			r("z", "127.0.0.1:7003", "127.0.0.1:7001")}, want: []string{`relay "x"`, `relay "y"`, `relay "z"`}},
		{name: "relay on the admin address", relays: []RelayConfig{r("x", "127.0.0.1:6060", "127.0.0.1:9")},
			want: []string{`relay "x": listen = "127.0.0.1:6060": is the admin endpoint's address`}},
		{name: "relay on a wildcard over the admin address", admin: "127.0.0.1:7070", relays: []RelayConfig{r("x", "0.0.0.0:7070", "127.0.0.1:9")},
			want: []string{"is the admin endpoint's address"}},
		// Allowed:
		{name: "chain", relays: []RelayConfig{r("y", "127.0.0.1:7002", "127.0.0.1:7001"), r("x", "127.0.0.1:7001", "127.0.0.1:9")}},
		{name: "same port, other address", relays: []RelayConfig{r("x", "127.0.0.1:7001", "127.0.0.2:7001")}},
		{name: "IPv4 wildcard, IPv6 target", relays: []RelayConfig{r("x", "0.0.0.0:7001", "[::1]:7001")}},
		{name: "UDP target of a TCP listener", relays: []RelayConfig{r("x", "127.0.0.1:7001", "127.0.0.1:9"),
			{Name: "u", Protocol: "udp", Listen: "127.0.0.1:7002", Targets: []string{"127.0.0.1:7001"}}}},
		{name: "admin off", admin: "off", relays: []RelayConfig{r("x", "127.0.0.1:6060", "127.0.0.1:9")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Admin: tt.admin, Relays: tt.relays}
			err := errors.Join(c.Validate(), c.CheckHost())
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			msg := err.Error()
			for _, w := range tt.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("Validate = %v\nwant it to contain %q", msg, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}
