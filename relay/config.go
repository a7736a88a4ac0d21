package relay

import (
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/softnet-go/softnet/socket"
)

// Defaults of the settings a Config leaves at zero or empty.
const (
	DefaultAdmin     = "127.0.0.1:6060"
	DefaultGrace     = 5 * time.Second
	DefaultLogFormat = "text"
	// DefaultUDPIdle is the idle timeout of a UDP relay that sets none: UDP has no end of
	// flow, so without one a flow per client address would live for ever.
	DefaultUDPIdle = time.Minute
	// DefaultTCPIdle is the idle timeout of a TCP relay that sets none: a direction that
	// moved nothing for this long ends, so that silent clients cannot hold descriptors
	// for ever (nginx's proxy_timeout is 10m too). Off turns it off.
	DefaultTCPIdle = 10 * time.Minute
	// DefaultKeepAlive is how long a TCP flow's socket may hear nothing from its peer
	// before TCP keepalive probes it (SO_KEEPALIVE, TCP_KEEPIDLE), unless the relay sets
	// another time or Off. With KeepAliveInterval and KeepAliveCount, a peer that vanished
	// (a cable cut, a host gone) is found within DefaultKeepAlive + 4 × 15 s = 2 minutes.
	DefaultKeepAlive = 60 * time.Second
	// KeepAliveInterval and KeepAliveCount are the keepalive probes' longest interval
	// (TCP_KEEPINTVL; a keepalive shorter than 60s has its probes a quarter of it apart,
	// at least 1 s) and how many may go unanswered (TCP_KEEPCNT).
	KeepAliveInterval = 15 * time.Second
	KeepAliveCount    = 4
	// Off, as a RelayConfig's Idle or KeepAlive, turns that timer off (0 is the default).
	Off time.Duration = -1
	// DefaultConnectTimeout bounds a connect to a TCP target that sets none.
	DefaultConnectTimeout = 5 * time.Second
	// MaxConnectTimeout is the longest ConnectTimeout accepted: past it Linux has given
	// up on the SYN anyway (tcp_syn_retries' default 6 is about 127 s).
	MaxConnectTimeout = 10 * time.Minute
	// DefaultSockBuf is the size of the kernel socket buffers (SO_RCVBUF and SO_SNDBUF)
	// of every socket a relay makes, unless the configuration says otherwise. Left to
	// autotuning, Linux grows a TCP socket's buffers to net.ipv4.tcp_rmem/tcp_wmem's
	// maximum (megabytes) per socket: a flood of stalled flows then parks its bytes in
	// the kernel, beyond the memory limit and out of sight of RSS. 256 KiB per buffer
	// still fills a 1 Gbit/s path with a 2 ms round trip.
	DefaultSockBuf = 256 << 10
	// MinSockBuf and MaxSockBuf bound a SockBuf that is not 0. Below 4 KiB Linux clamps
	// the size anyway (SOCK_MIN_RCVBUF) and TCP crawls; above 1 GiB the doubled size the
	// kernel keeps no longer fits its int.
	MinSockBuf = 4 << 10
	MaxSockBuf = 1 << 30
	// BulkSockBufBudget bounds the extra kernel socket buffer that bulk flows may
	// borrow beyond SockBuf: an auto-mode flow that proves to be bulk and moves to the
	// kernel path has its source's receive and its drain's send buffer raised to 4 MiB
	// (socket.DefaultBulkBuffer) while the daemon's loans stay under this budget, and
	// back to SockBuf when it goes quiet or ends. Small buffers keep a flood of stalled
	// flows out of the kernel; the loans give bulk flows the throughput of autotuned
	// buffers. Linux doubles what is set, so the kernel memory lent stays under twice
	// this.
	BulkSockBufBudget = 64 << 20
)

// Config is the whole configuration of a daemon: global settings and its relays.
type Config struct {
	// Admin is the address of the admin endpoint (/metrics, /debug/mbuf, /healthz, and
	// /debug/pprof/ with AdminPprof); DefaultAdmin if empty, "off" for none. It must be
	// a loopback address unless AdminPublic is set.
	Admin string
	// AdminPublic allows a non-loopback Admin address; it requires AdminTokenFile.
	AdminPublic bool
	// AdminPprof serves Go's profiles under /debug/pprof/ on the admin endpoint; off,
	// those paths are 404.
	AdminPprof bool
	// AdminTokenFile, if not empty, names a file holding the bearer token that every
	// request to the admin endpoint but /healthz must carry ("Authorization: Bearer
	// TOKEN"). The daemon reads it at start; whitespace around the token is ignored, and
	// the token must be at least 16 bytes. A relative path is from the daemon's working
	// directory.
	AdminTokenFile string
	// Workers is the number of softnet workers; 0 is one per CPU.
	Workers int
	// MemLimit is the byte limit over every mbuf and cluster zone; 0 is unlimited.
	MemLimit int64
	// MaxFlows caps the flows open at once over every relay, TCP and UDP: a client
	// beyond it is closed at once (TCP, with a reset) or its datagram dropped (UDP), and
	// counted. 0 is DefaultMaxFlows(), which keeps a reserve of the descriptor limit for
	// the admin endpoint, target connects and logs.
	MaxFlows int64
	// SockBuf is the size, in bytes, of the kernel socket buffers (SO_RCVBUF and
	// SO_SNDBUF) of every socket the relays make: accepted clients, dialled targets and
	// UDP flows' sockets. With the socket engine it is also the high-water mark of the
	// user-space sockbufs (a UDP send sockbuf keeps at least 64 KiB, so that any datagram
	// fits). 0 leaves the kernel's autotuning. LoadConfig and `spliced run` give
	// DefaultSockBuf when it is not set; a Config built in code has what it says.
	SockBuf int64
	// AccessLog writes a line per flow at info level as it ends (relay, client, target,
	// bytes each way, duration, how it ended), for every relay that does not say
	// otherwise. LoadConfig and `spliced run` turn it on unless told not to; a Config
	// built in code has what it says.
	AccessLog bool
	// LogLevel is the least level logged: "debug", "info" (the default, if empty),
	// "warn" or "error". A reload applies a new one.
	LogLevel string
	// Grace is how long open flows may finish after SIGINT or SIGTERM; DefaultGrace if 0.
	Grace time.Duration
	// LogFormat is "text" or "json"; DefaultLogFormat if empty.
	LogFormat string
	// Relays are the relays to run; their names are unique.
	Relays []RelayConfig
}

// RelayConfig describes one relay: where it listens, where it sends, and the limits of
// each direction of each flow.
type RelayConfig struct {
	// Name names the relay in logs and metrics; unique within a Config.
	Name string
	// Protocol is "tcp" or "udp"; Server.Apply takes "" as "tcp".
	Protocol string
	// Listen is the host:port to accept clients on; port 0 picks a free port.
	Listen string
	// Targets are the host:port addresses flows go to, taken in turn (round-robin);
	// a TCP target that refuses or times out is skipped and counted.
	Targets []string
	// Max is the most bytes one direction of a flow may move (OpenBSD's sp_max);
	// 0 is unlimited. Reaching it closes the flow.
	Max int64
	// Idle ends one direction of a flow that moved nothing for this long (sp_idle);
	// 0 is DefaultTCPIdle for TCP and DefaultUDPIdle for UDP, Off is none (TCP only).
	// A flow ends when both of its
	// directions have ended.
	Idle time.Duration
	// Mode chooses how bytes move: ModeAuto ("" too), ModeUser or ModeKernel.
	Mode Mode
	// KeepAlive is the silence after which TCP keepalive probes the peer of each socket
	// of a flow, client and target (a quarter of it apart, 1s to KeepAliveInterval,
	// KeepAliveCount of them);
	// 0 is DefaultKeepAlive, Off is none. TCP only.
	KeepAlive time.Duration
	// ConnectTimeout bounds each connect to a TCP target; a target that does not answer
	// within it is counted and the next one is tried. 0 is DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// AccessLog, if not nil, overrides Config.AccessLog for this relay.
	AccessLog *bool
	// ReusePort lets other processes listen on Listen too (SO_REUSEPORT, the kernel
	// spreading clients over all of them), for a zero-downtime swap: the new daemon
	// starts, then the old one stops. Without it a relay refuses to start on an address
	// another socket listens on.
	ReusePort bool
	// MaxFlowsPerSource caps the flows open at once from one source (a client's IPv4
	// address, or the /64 of its IPv6 address); a client beyond it is refused like one
	// beyond MaxFlows. 0 is DefaultMaxFlowsPerSource, -1 is none.
	MaxFlowsPerSource int
	// NewFlowsPerSource caps the rate of new flows from one source; the zero Rate is
	// none (the default).
	NewFlowsPerSource Rate
	// ProxyProtocol, if not ProxyNone, sends a PROXY protocol header (version 1 or 2)
	// with the client's address to the target before any byte of the client (TCP only).
	ProxyProtocol ProxyVersion
}

// withDefaults returns r as a relay runs it: every setting left at zero given its
// default (the Default constants above), Off turned into 0 (none), its targets its own.
func (r RelayConfig) withDefaults() RelayConfig {
	r.Targets = slices.Clone(r.Targets)
	if r.Protocol == "" {
		r.Protocol = "tcp"
	}
	if r.Mode == "" {
		r.Mode = ModeAuto
	}
	switch {
	case r.Idle == Off:
		r.Idle = 0 // none
	case r.Idle == 0 && r.Protocol == "udp":
		r.Idle = DefaultUDPIdle
	case r.Idle == 0:
		r.Idle = DefaultTCPIdle
	}
	if r.KeepAlive == 0 && r.Protocol != "udp" {
		r.KeepAlive = DefaultKeepAlive
	}
	if r.ConnectTimeout == 0 {
		r.ConnectTimeout = DefaultConnectTimeout
	}
	if r.MaxFlowsPerSource == 0 {
		r.MaxFlowsPerSource = DefaultMaxFlowsPerSource
	}
	return r
}

// Mode is how a relay moves bytes.
type Mode string

// The modes, package socket's splice modes (SpliceAuto, SpliceUser, SpliceKernel).
const (
	ModeAuto   Mode = "auto"
	ModeUser   Mode = "user"
	ModeKernel Mode = "kernel"
)

// spliceModes are the modes and the socket splice mode each stands for: the one place
// that knows them.
var spliceModes = map[Mode]socket.SpliceMode{
	ModeAuto:   socket.SpliceAuto,
	ModeUser:   socket.SpliceUser,
	ModeKernel: socket.SpliceKernel,
}

// ParseMode parses the name of a mode: "auto", "user" or "kernel"; "" is ModeAuto.
func ParseMode(s string) (Mode, error) {
	if s == "" {
		return ModeAuto, nil
	}
	if _, ok := spliceModes[Mode(s)]; !ok {
		return "", fmt.Errorf("unknown mode %q (want auto, user or kernel)", s)
	}
	return Mode(s), nil
}

// spliceMode returns the socket splice mode of m ("": SpliceAuto).
func (m Mode) spliceMode() socket.SpliceMode {
	return spliceModes[m] // the zero SpliceMode is SpliceAuto
}

// ProxyVersion is the version of the PROXY protocol header sent to targets; ProxyNone
// sends none.
type ProxyVersion int

// The PROXY protocol versions (HAProxy's proxy-protocol.txt).
const (
	ProxyNone ProxyVersion = 0
	ProxyV1   ProxyVersion = 1 // text: "PROXY TCP4 src dst sport dport\r\n"
	ProxyV2   ProxyVersion = 2 // binary, with the 12-byte signature
)

// ParseProxyVersion parses "", "none", "v1" or "v2".
func ParseProxyVersion(s string) (ProxyVersion, error) {
	switch s {
	case "", "none":
		return ProxyNone, nil
	case "v1", "1":
		return ProxyV1, nil
	case "v2", "2":
		return ProxyV2, nil
	}
	return 0, fmt.Errorf("unknown PROXY protocol version %q (want v1 or v2, or none)", s)
}

// String returns "none", "v1" or "v2".
func (v ProxyVersion) String() string {
	switch v {
	case ProxyNone:
		return "none"
	case ProxyV1:
		return "v1"
	case ProxyV2:
		return "v2"
	}
	return fmt.Sprintf("ProxyVersion(%d)", int(v))
}

// Equal reports whether r and o describe the same relay.
func (r *RelayConfig) Equal(o *RelayConfig) bool {
	if r.Name != o.Name || r.Protocol != o.Protocol || r.Listen != o.Listen ||
		r.Max != o.Max || r.Idle != o.Idle || r.Mode != o.Mode || r.ConnectTimeout != o.ConnectTimeout || r.KeepAlive != o.KeepAlive ||
		r.ProxyProtocol != o.ProxyProtocol || r.MaxFlowsPerSource != o.MaxFlowsPerSource || r.ReusePort != o.ReusePort ||
		(r.AccessLog == nil) != (o.AccessLog == nil) || r.AccessLog != nil && *r.AccessLog != *o.AccessLog ||
		r.NewFlowsPerSource != o.NewFlowsPerSource || len(r.Targets) != len(o.Targets) {
		return false
	}
	for i := range r.Targets {
		if r.Targets[i] != o.Targets[i] {
			return false
		}
	}
	return true
}

// keepAliveConfig returns the keepalive settings of a TCP relay's sockets for k, a
// RelayConfig's KeepAlive after Apply's defaults (Off: none). The probes go a quarter
// of k apart, from 1 s (TCP_KEEPINTVL counts seconds) to KeepAliveInterval: the default
// 60s finds a vanished peer in 2 minutes, a short setting in about twice itself.
func keepAliveConfig(k time.Duration) net.KeepAliveConfig {
	if k <= 0 {
		return net.KeepAliveConfig{Enable: false}
	}
	return net.KeepAliveConfig{Enable: true, Idle: k, Interval: keepAliveInterval(k), Count: KeepAliveCount}
}

// keepAliveInterval is the probe interval of keepalive k.
func keepAliveInterval(k time.Duration) time.Duration {
	return min(max(k/4, time.Second), KeepAliveInterval).Truncate(time.Second)
}
