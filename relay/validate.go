package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// resolveTimeout bounds the lookup of one host name during validation.
const resolveTimeout = 5 * time.Second

// Validate checks every setting of c on its own, without looking anything up, and
// returns nil or the problems found, each a *ConfigError naming the key and the value,
// joined with errors.Join: syntax and ranges, unique names, and no two relays listening
// on the same protocol and port with overlapping addresses. What depends on the host —
// names that resolve, loops through its addresses — is CheckHost's.
func (c *Config) Validate() error {
	var errs []error
	global := func(key, value string, err error) {
		errs = append(errs, &ConfigError{Relay: -1, Key: key, Value: value, Err: err})
	}
	if c.Admin != "" && c.Admin != "off" {
		if err := checkAdmin(c.Admin, c.AdminPublic); err != nil {
			global("admin", strconv.Quote(c.Admin), err)
		}
	}
	if c.AdminPublic && c.AdminTokenFile == "" && c.Admin != "off" {
		global("admin_token_file", "", errors.New("required with admin_public (--admin-public): "+
			"an admin endpoint off loopback must ask every client but /healthz for a bearer token"))
	}
	if c.Workers < 0 || c.Workers > 1024 {
		global("workers", strconv.Itoa(c.Workers), errors.New("must be between 0 (one per CPU) and 1024"))
	}
	if c.MemLimit < 0 {
		global("mem_limit", strconv.FormatInt(c.MemLimit, 10), errors.New("must not be negative"))
	}
	if c.MaxFlows < 0 || c.MaxFlows > MaxMaxFlows {
		global("max_flows", strconv.FormatInt(c.MaxFlows, 10), fmt.Errorf("want 0 (derived from the descriptor limit: %d now) to %d", DefaultMaxFlows(), MaxMaxFlows))
	}
	if c.SockBuf != 0 && (c.SockBuf < MinSockBuf || c.SockBuf > MaxSockBuf) {
		global("sockbuf", strconv.FormatInt(c.SockBuf, 10), fmt.Errorf("must be 0 (the kernel's autotuning) or from %s to %s",
			FormatSize(MinSockBuf), FormatSize(MaxSockBuf)))
	}
	if c.Grace < 0 {
		global("grace", strconv.Quote(c.Grace.String()), errors.New("must not be negative"))
	}
	if c.LogFormat != "" && c.LogFormat != "text" && c.LogFormat != "json" {
		global("log_format", strconv.Quote(c.LogFormat), errors.New(`want "text" or "json"`))
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		global("log_level", strconv.Quote(c.LogLevel), errors.New(`want "debug", "info", "warn" or "error"`))
	}
	if len(c.Relays) == 0 {
		global("relay", "", errors.New("no relay configured"))
	}
	names := map[string]int{}
	var listeners []listenerKey
	for i := range c.Relays {
		r := &c.Relays[i]
		bad := func(key, value string, err error) {
			errs = append(errs, &ConfigError{Relay: i, Name: r.Name, Key: key, Value: value, Err: err})
		}
		if r.Name == "" {
			bad("name", "", errors.New("missing"))
		} else if j, dup := names[r.Name]; dup {
			bad("name", strconv.Quote(r.Name), fmt.Errorf("also the name of relay #%d", j+1))
		} else {
			names[r.Name] = i
		}
		if r.Protocol != "tcp" && r.Protocol != "udp" && r.Protocol != "" {
			bad("protocol", strconv.Quote(r.Protocol), errors.New(`want "tcp" or "udp"`))
		}
		if lk, err := checkListen(r.Protocol, r.Listen); err != nil {
			bad("listen", strconv.Quote(r.Listen), err)
		} else {
			for _, o := range listeners {
				if o.overlaps(lk) {
					bad("listen", strconv.Quote(r.Listen), fmt.Errorf("relay %q already listens on %s/%s", o.relay, o.proto, o.addr))
					break
				}
			}
			lk.relay = r.Name
			listeners = append(listeners, lk)
		}
		if len(r.Targets) == 0 {
			bad("targets", "", errors.New("missing: give at least one host:port"))
		}
		for _, t := range r.Targets {
			if _, _, err := checkTarget(t); err != nil {
				bad("targets", strconv.Quote(t), err)
			}
		}
		if r.Max < 0 {
			bad("max", strconv.FormatInt(r.Max, 10), errors.New("must not be negative"))
		}
		switch {
		case r.Idle < 0 && r.Idle != Off:
			bad("idle", strconv.Quote(r.Idle.String()), errors.New("must not be negative"))
		case r.Idle == Off && r.Protocol == "udp":
			bad("idle", `"0"`, errors.New("a UDP flow ends only by its idle timeout: give one, or leave the default (1m)"))
		}
		switch {
		case r.KeepAlive < 0 && r.KeepAlive != Off:
			bad("keepalive", strconv.Quote(r.KeepAlive.String()), errors.New("must not be negative"))
		case r.KeepAlive > 0 && r.KeepAlive < time.Second:
			bad("keepalive", strconv.Quote(r.KeepAlive.String()), errors.New("want 1s or more (TCP_KEEPIDLE counts seconds), or 0 for none"))
		case r.KeepAlive != 0 && r.Protocol == "udp":
			bad("keepalive", strconv.Quote(r.KeepAlive.String()), errors.New("TCP keepalive is for TCP relays only"))
		}
		if _, err := ParseMode(string(r.Mode)); err != nil {
			bad("mode", strconv.Quote(string(r.Mode)), errors.New("want auto, user or kernel"))
		} else if r.Mode == ModeKernel && r.Protocol == "udp" {
			bad("mode", strconv.Quote(string(r.Mode)), errors.New("kernel splicing (splice(2)) is for TCP relays only"))
		}
		if r.ConnectTimeout < 0 || r.ConnectTimeout > MaxConnectTimeout || r.ConnectTimeout > 0 && r.ConnectTimeout < time.Millisecond {
			bad("connect_timeout", strconv.Quote(r.ConnectTimeout.String()), fmt.Errorf("want 1ms to %v (0: the default, %v)", MaxConnectTimeout, DefaultConnectTimeout))
		}
		if r.MaxFlowsPerSource < -1 || r.MaxFlowsPerSource > MaxMaxFlows {
			bad("max_flows_per_source", strconv.Itoa(r.MaxFlowsPerSource), fmt.Errorf("want 1 to %d, or 0 for no cap (unset: %d)", MaxMaxFlows, DefaultMaxFlowsPerSource))
		}
		if n := r.NewFlowsPerSource; n.N < 0 || n.N > 0 && (n.Per < time.Millisecond || n.Per/time.Duration(n.N) <= 0) {
			bad("new_flows_per_source", strconv.Quote(n.String()), errors.New(`want a rate such as "100/s"`))
		}
		switch r.ProxyProtocol {
		case ProxyNone:
		case ProxyV1, ProxyV2:
			if r.Protocol == "udp" {
				bad("proxy_protocol", strconv.Quote(r.ProxyProtocol.String()), errors.New("the PROXY protocol header is for TCP relays only"))
			}
		default:
			bad("proxy_protocol", strconv.Itoa(int(r.ProxyProtocol)), errors.New(`want "v1" or "v2"`))
		}
	}
	return errors.Join(errs...)
}

// CheckHost checks what depends on the host the configuration is to run on, which
// Validate leaves alone: host names of listen addresses, targets and the admin endpoint
// resolve (each looked up once, bounded by 5 s), a named admin address is loopback, and
// no target leads back to its own relay — its listen address, or a ring of relays of the
// configuration (x → y → x), by any address of this host — and no relay listens on the
// admin address. It returns nil or the problems found, each a *ConfigError, joined.
// LoadConfig and ParseConfig call it after Validate; a Config built in code should too
// before Server.Apply.
func (c *Config) CheckHost() error {
	var errs []error
	admin := c.Admin
	if admin == "" {
		admin = DefaultAdmin
	}
	if admin != "off" && !c.AdminPublic {
		if host, _, err := splitHostPort(admin, 0); err == nil && host != "" {
			if _, err := netip.ParseAddr(host); err != nil {
				if err := checkAdminName(host); err != nil {
					errs = append(errs, &ConfigError{Relay: -1, Key: "admin", Value: strconv.Quote(c.Admin), Err: err})
				}
			}
		}
	}
	ends := make([]relayEnds, len(c.Relays))
	for i := range c.Relays {
		r := &c.Relays[i]
		bad := func(key, value string, err error) {
			errs = append(errs, &ConfigError{Relay: i, Name: r.Name, Key: key, Value: value, Err: err})
		}
		if lk, err := checkListen(r.Protocol, r.Listen); err == nil {
			if !lk.ip.IsValid() {
				host, _, _ := splitHostPort(r.Listen, 0)
				ips, err := resolve(host)
				if err != nil {
					bad("listen", strconv.Quote(r.Listen), err)
					continue
				}
				if len(ips) == 1 {
					lk.ip = ips[0]
				}
			}
			ends[i].listen, ends[i].ok = lk, true
		}
		for _, t := range r.Targets {
			host, port, err := checkTarget(t)
			if err != nil {
				continue // Validate's
			}
			var addrs []netip.AddrPort
			if ip, err := netip.ParseAddr(host); err == nil {
				addrs = []netip.AddrPort{netip.AddrPortFrom(ip, port)}
			} else {
				ips, err := resolve(host)
				if err != nil {
					bad("targets", strconv.Quote(t), err)
					continue
				}
				for _, ip := range ips {
					addrs = append(addrs, netip.AddrPortFrom(ip, port))
				}
			}
			ends[i].targets = append(ends[i].targets, targetAddrs{t, addrs})
		}
	}
	errs = append(errs, c.checkLoops(ends, admin)...)
	return errors.Join(errs...)
}

// listenerKey identifies what a listener binds, to find two relays binding the same.
type listenerKey struct {
	relay string
	proto string
	addr  string
	ip    netip.Addr // invalid for a host name; unspecified for "" or 0.0.0.0 or ::
	port  uint16
}

func (a listenerKey) overlaps(b listenerKey) bool {
	if a.proto != b.proto || a.port != b.port || a.port == 0 {
		return false
	}
	if !a.ip.IsValid() || !b.ip.IsValid() {
		return a.addr == b.addr
	}
	return a.ip == b.ip || a.ip.IsUnspecified() || b.ip.IsUnspecified()
}

// checkListen checks a listen address: host:port, the port a number 0-65535 and the host
// empty, an IP address or a name that resolves.
func checkListen(proto, addr string) (listenerKey, error) {
	host, port, err := splitHostPort(addr, 0)
	if err != nil {
		return listenerKey{}, err
	}
	lk := listenerKey{proto: proto, addr: addr, port: port}
	if host == "" {
		lk.ip = netip.IPv6Unspecified()
		return lk, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		lk.ip = ip.Unmap()
	}
	return lk, nil // a host name: lk.ip stays invalid until CheckHost resolves it
}

// checkTarget checks a target address: host:port, with a host and a port 1-65535; it
// returns them.
func checkTarget(addr string) (string, uint16, error) {
	host, port, err := splitHostPort(addr, 1)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		return "", 0, errors.New("missing host (write 127.0.0.1:PORT for this machine)")
	}
	return host, port, nil
}

// adminHint says why the admin endpoint stays on loopback.
const adminHint = "the admin endpoint serves the daemon's metrics and internals and must stay on loopback (127.0.0.1, ::1); " +
	"set admin_public = true (--admin-public), with admin_token_file (--admin-token-file), to allow it"

// checkAdmin checks the admin endpoint's address: host:port with a loopback host, unless
// public allows any. A host name passes here and is looked up by CheckHost.
func checkAdmin(addr string, public bool) error {
	host, _, err := splitHostPort(addr, 0)
	if err != nil {
		return err
	}
	if public {
		return nil
	}
	if host == "" {
		return errors.New("listens on every interface: " + adminHint)
	}
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address: %s", ip, adminHint)
	}
	return nil
}

// checkAdminName checks that an admin host name resolves to loopback addresses only.
func checkAdminName(host string) error {
	ips, err := resolve(host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address: %s", ip, adminHint)
		}
	}
	return nil
}

// splitHostPort splits host:port and checks that the port is a number from min to 65535.
func splitHostPort(addr string, min int) (string, uint16, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return "", 0, fmt.Errorf("want host:port ([host]:port for IPv6): %s", ae.Err)
		}
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, fmt.Errorf("port %q is not a number", port)
	}
	if n < min || n > 65535 {
		return "", 0, fmt.Errorf("port %d is out of range %d-65535", n, min)
	}
	return host, uint16(n), nil
}

// resolve looks a host name up, bounded by resolveTimeout.
func resolve(host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, fmt.Errorf("host %q does not resolve", host)
		}
		return nil, fmt.Errorf("cannot resolve host %q: %v", host, err)
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}
