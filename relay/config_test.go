package relay

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseConfigGood(t *testing.T) {
	const text = `
admin = "127.0.0.1:7070"
mem_limit = "64MiB"
grace = "2s"
log_format = "json"

[[relay]]
name = "web"
listen = "127.0.0.1:8080"
targets = ["127.0.0.1:80", "localhost:81"]
max = "1GiB"
idle = "5m"
mode = "user"
proxy_protocol = "v2"

[[relay]]
protocol = "udp"
listen = "127.0.0.1:5353"
targets = "127.0.0.1:53"
max = 4096
`
	c, err := ParseConfig([]byte(text), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin != "127.0.0.1:7070" || c.MemLimit != 64<<20 || c.Grace != 2*time.Second || c.LogFormat != "json" {
		t.Errorf("globals: %+v", c)
	}
	if len(c.Relays) != 2 {
		t.Fatalf("relays: %+v", c.Relays)
	}
	r := c.Relays[0]
	if r.Name != "web" || r.Protocol != "tcp" || len(r.Targets) != 2 || r.Max != 1<<30 ||
		r.Idle != 5*time.Minute || r.Mode != ModeUser || r.ProxyProtocol != ProxyV2 {
		t.Errorf("relay 0: %+v", r)
	}
	r = c.Relays[1]
	if r.Name != "udp-127.0.0.1:5353" || r.Protocol != "udp" || r.Targets[0] != "127.0.0.1:53" || r.Max != 4096 || r.Mode != ModeAuto {
		t.Errorf("relay 1: %+v", r)
	}
}

// TestParseConfigBad checks that every bad value is refused with the line, the key and
// the value named.
func TestParseConfigBad(t *testing.T) {
	const head = "[[relay]]\nname = \"a\"\nlisten = \"127.0.0.1:9000\"\ntargets = [\"127.0.0.1:80\"]\n"
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"syntax", "admin = \n", []string{"t.toml:1:"}},
		{"unknown global", "adminn = \"x\"\n" + head, []string{"t.toml:1:", "adminn", "unknown key"}},
		{"unknown relay key", head + "lisen = \"x\"\n", []string{"t.toml:5:", `relay "a"`, "lisen", "unknown key"}},
		{"unknown table", "[foo]\nx = 1\n" + head, []string{"t.toml:1:", "foo", "unknown key"}},
		{"port range", "[[relay]]\nname = \"a\"\nlisten = \"127.0.0.1:99999\"\ntargets = [\"127.0.0.1:80\"]\n", []string{"t.toml:3:", `listen = "127.0.0.1:99999"`, "out of range"}},
		{"port word", head + "[[relay]]\nname = \"b\"\nlisten = \"127.0.0.1:http\"\ntargets = [\"127.0.0.1:80\"]\n", []string{"t.toml:7:", `relay "b"`, `"127.0.0.1:http"`, "not a number"}},
		{"no port", "[[relay]]\nlisten = \"127.0.0.1\"\ntargets = [\"127.0.0.1:80\"]\n", []string{"t.toml:2:", "listen", "host:port"}},
		{"target port 0", "[[relay]]\nlisten = \"127.0.0.1:1\"\ntargets = [\"127.0.0.1:0\"]\n", []string{"t.toml:3:", `targets = "127.0.0.1:0"`, "out of range 1-65535"}},
		{"target unresolved", head + "[[relay]]\nname = \"b\"\nlisten = \"127.0.0.1:9001\"\ntargets = [\"no-such-host.invalid:80\"]\n", []string{"t.toml:8:", "no-such-host.invalid", "does not resolve"}},
		{"no targets", "[[relay]]\nlisten = \"127.0.0.1:1\"\n", []string{"t.toml:1:", "targets", "missing"}},
		{"size unit", head + "max = \"64XB\"\n", []string{"t.toml:5:", `max = "64XB"`, "bad size"}},
		{"size negative", head + "max = -1\n", []string{"t.toml:5:", "max = -1", "negative"}},
		{"size type", head + "max = true\n", []string{"t.toml:5:", "max = true", "want a size"}},
		{"duration", head + "idle = \"5 minutes\"\n", []string{"t.toml:5:", `idle = "5 minutes"`, "duration"}},
		{"duration bare", head + "idle = 30\n", []string{"t.toml:5:", "idle = 30", "unit"}},
		{"duration negative", "grace = \"-1s\"\n" + head, []string{"t.toml:1:", `grace = "-1s"`, "negative"}},
		{"mode", head + "mode = \"fast\"\n", []string{"t.toml:5:", `mode = "fast"`, "auto, user or kernel"}},
		{"kernel udp", "[[relay]]\nprotocol = \"udp\"\nlisten = \"127.0.0.1:1\"\ntargets = [\"127.0.0.1:2\"]\nmode = \"kernel\"\n", []string{"t.toml:5:", "mode", "TCP"}},
		{"proxy", head + "proxy_protocol = \"v3\"\n", []string{"t.toml:5:", `"v3"`}},
		{"protocol", head + "protocol = \"sctp\"\n", []string{"t.toml:5:", `protocol = "sctp"`}},
		{"duplicate listener", head + "[[relay]]\nname = \"b\"\nlisten = \"0.0.0.0:9000\"\ntargets = [\"127.0.0.1:80\"]\n", []string{"t.toml:7:", `relay "b"`, `"0.0.0.0:9000"`, `relay "a" already listens`}},
		{"duplicate name", head + "[[relay]]\nname = \"a\"\nlisten = \"127.0.0.1:9001\"\ntargets = [\"127.0.0.1:80\"]\n", []string{"t.toml:6:", `name = "a"`, "relay #1"}},
		{"public admin", "admin = \"0.0.0.0:6060\"\n" + head, []string{"t.toml:1:", `admin = "0.0.0.0:6060"`, "admin_public"}},
		{"workers", "workers = -2\n" + head, []string{"t.toml:1:", "workers = -2"}},
		{"log format", "log_format = \"xml\"\n" + head, []string{"t.toml:1:", `log_format = "xml"`}},
		{"no relay", "grace = \"1s\"\n", []string{"no relay"}},
		{"sockbuf small", "sockbuf = \"1KiB\"\n" + head, []string{"t.toml:1:", `sockbuf = "1KiB"`, "4KiB"}},
		{"sockbuf large", "sockbuf = \"2GiB\"\n" + head, []string{"t.toml:1:", `sockbuf = "2GiB"`, "1GiB"}},
		{"sockbuf negative", "sockbuf = -1\n" + head, []string{"t.toml:1:", "sockbuf = -1", "negative"}},
		{"sockbuf unit", "sockbuf = \"64XB\"\n" + head, []string{"t.toml:1:", `sockbuf = "64XB"`, "bad size"}},
		{"udp idle off", "[[relay]]\nprotocol = \"udp\"\nlisten = \"127.0.0.1:1\"\ntargets = [\"127.0.0.1:2\"]\nidle = \"0\"\n", []string{"t.toml:5:", "idle", "UDP flow"}},
		{"keepalive short", head + "keepalive = \"500ms\"\n", []string{"t.toml:5:", `keepalive = "500ms"`, "1s or more"}},
		{"keepalive udp", "[[relay]]\nprotocol = \"udp\"\nlisten = \"127.0.0.1:1\"\ntargets = [\"127.0.0.1:2\"]\nkeepalive = \"30s\"\n", []string{"t.toml:5:", "keepalive", "TCP relays only"}},
		{"connect timeout long", head + "connect_timeout = \"1h\"\n", []string{"t.toml:5:", `connect_timeout = "1h"`, "10m"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.text), "t.toml")
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.text)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestParseConfigSockBuf checks the sockbuf key: absent is DefaultSockBuf, 0 is the
// kernel's autotuning, sizes take units.
func TestParseConfigSockBuf(t *testing.T) {
	const head = "[[relay]]\nlisten = \"127.0.0.1:9000\"\ntargets = [\"127.0.0.1:80\"]\n"
	for _, tc := range []struct {
		line string
		want int64
	}{
		{"", DefaultSockBuf},
		{"sockbuf = 0\n", 0},
		{"sockbuf = \"128KiB\"\n", 128 << 10},
		{"sockbuf = 65536\n", 64 << 10},
		{"sockbuf = \"4KiB\"\n", MinSockBuf},
		{"sockbuf = \"1GiB\"\n", MaxSockBuf},
	} {
		c, err := ParseConfig([]byte(tc.line+head), "t.toml")
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if c.SockBuf != tc.want {
			t.Errorf("%q: SockBuf = %d, want %d", tc.line, c.SockBuf, tc.want)
		}
	}
	c := Config{SockBuf: MinSockBuf - 1, Relays: []RelayConfig{{Name: "a", Listen: "127.0.0.1:1", Targets: []string{"127.0.0.1:2"}}}}
	err := c.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "sockbuf" || ce.Value != "4095" {
		t.Errorf("Validate of SockBuf 4095: %v", err)
	}
}

func TestParseConfigAllErrors(t *testing.T) {
	_, err := ParseConfig([]byte("[[relay]]\nlisten = \"127.0.0.1:1\"\ntargets = [\"127.0.0.1:2\"]\nmax = \"x\"\nidle = \"y\"\n"), "t.toml")
	if err == nil || !strings.Contains(err.Error(), "t.toml:4:") || !strings.Contains(err.Error(), "t.toml:5:") {
		t.Fatalf("want both errors, got %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "65536": 65536, "64KiB": 64 << 10, "64MiB": 64 << 20, "1GiB": 1 << 30, "1gib": 1 << 30,
		"10MB": 10e6, "64M": 64 << 20, "2k": 2048, "1.5GiB": 3 << 29, "512 B": 512, "7b": 7,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5", "MiB", "64XB", "1e3", "9999999999TiB", "0x10", "NaNGiB"} {
		if n, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, n)
		}
	}
	for _, n := range []int64{0, 1, 1536, 64 << 20, 3 << 30} {
		if got, err := ParseSize(FormatSize(n)); err != nil || got != n {
			t.Errorf("round trip of %d: %q → %d, %v", n, FormatSize(n), got, err)
		}
	}
}

func TestContribConfig(t *testing.T) {
	if _, err := os.Stat("../contrib/spliced.toml"); err != nil {
		t.Skip("no contrib/spliced.toml")
	}
	c, err := LoadConfig("../contrib/spliced.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Relays) == 0 {
		t.Fatal("no relays in the example")
	}
}

// TestParseConfigTimers: idle and keepalive absent are the defaults (0, filled in by
// Apply), written as 0 they are Off; Apply gives TCP relays 10m idle and 60s keepalive.
func TestParseConfigTimers(t *testing.T) {
	const head = "[[relay]]\nname = \"a\"\nlisten = \"127.0.0.1:9000\"\ntargets = [\"127.0.0.1:80\"]\n"
	for _, tc := range []struct {
		text            string
		idle, keepalive time.Duration
	}{
		{head, 0, 0},
		{head + "idle = \"0\"\nkeepalive = \"0\"\n", Off, Off},
		{head + "idle = \"90s\"\nkeepalive = \"2m\"\n", 90 * time.Second, 2 * time.Minute},
	} {
		c, err := ParseConfig([]byte(tc.text), "t.toml")
		if err != nil {
			t.Fatal(err)
		}
		if r := c.Relays[0]; r.Idle != tc.idle || r.KeepAlive != tc.keepalive {
			t.Errorf("%q: idle %v keepalive %v, want %v and %v", tc.text, r.Idle, r.KeepAlive, tc.idle, tc.keepalive)
		}
	}
	srv, _ := startServer(t, RelayConfig{Targets: []string{"127.0.0.1:1"}})
	if cfg := srv.running["test"].settings().cfg; cfg.Idle != DefaultTCPIdle || cfg.KeepAlive != DefaultKeepAlive {
		t.Errorf("a TCP relay with no timers runs with idle %v and keepalive %v, want %v and %v", cfg.Idle, cfg.KeepAlive, DefaultTCPIdle, DefaultKeepAlive)
	}
}
