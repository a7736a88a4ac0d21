package relay

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// A relay whose target leads back to itself — its own listen address, or a ring of
// relays of the same daemon (x → y → x) — would take each client round the ring until
// every descriptor is gone; one listening on the admin endpoint's address fails as it
// starts. Config.CheckHost refuses both; a plain chain (y → x → elsewhere) stays allowed.

// relayEnds is what the loop check knows of one relay: its listener and the addresses
// of its targets.
type relayEnds struct {
	listen  listenerKey // valid when ok
	ok      bool
	targets []targetAddrs
}

// targetAddrs are a target as written and the addresses it resolved to.
type targetAddrs struct {
	name  string
	addrs []netip.AddrPort
}

// localAddrs returns the addresses of this host's interfaces.
func localAddrs() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	as, _ := net.InterfaceAddrs()
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out[p.Addr().Unmap().WithZone("")] = true
		}
	}
	return out
}

// reaches reports whether a connect to ap, over proto, from this host would reach the
// listener l: same protocol and port, and an address l is bound to — l's own, or, for a
// wildcard listener, any address of this host of l's family ("0.0.0.0" is IPv4 only).
func (l listenerKey) reaches(proto string, ap netip.AddrPort, local map[netip.Addr]bool) bool {
	if normProto(l.proto) != normProto(proto) || l.port == 0 || ap.Port() != l.port || !l.ip.IsValid() {
		return false
	}
	ip := ap.Addr().Unmap().WithZone("")
	if !l.ip.IsUnspecified() {
		return ip == l.ip
	}
	if l.ip.Is4() && !ip.Is4() {
		return false
	}
	return ip.IsLoopback() || ip.IsUnspecified() || local[ip]
}

func normProto(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}

// checkLoops returns the errors of relays whose targets lead back to themselves, and of
// relays listening on the admin address admin ("" for none).
func (c *Config) checkLoops(ends []relayEnds, admin string) []error {
	var errs []error
	local := localAddrs()
	// next[i] lists the relays a target of relay i reaches, with the target's name.
	type edge struct {
		to     int
		target string
	}
	next := make([][]edge, len(ends))
	for i, e := range ends {
		for _, t := range e.targets {
			for j, o := range ends {
				if !o.ok {
					continue
				}
				if slices.ContainsFunc(t.addrs, func(ap netip.AddrPort) bool { return o.listen.reaches(c.Relays[i].Protocol, ap, local) }) {
					next[i] = append(next[i], edge{j, t.name})
				}
			}
		}
	}
	for i := range ends {
		// A ring through i: a path from i back to i, found depth-first.
		path := []string{}
		seen := make([]bool, len(ends))
		var walk func(at int) bool
		walk = func(at int) bool {
			for _, e := range next[at] {
				if e.to == i {
					path = append(path, e.target)
					return true
				}
				if seen[e.to] {
					continue
				}
				seen[e.to] = true
				path = append(path, e.target)
				if walk(e.to) {
					return true
				}
				path = path[:len(path)-1]
			}
			return false
		}
		if !walk(i) {
			continue
		}
		r := &c.Relays[i]
		msg := "leads back to this relay's own listen address " + strconv.Quote(r.Listen)
		if len(path) > 1 {
			msg = "leads back to this relay through " + strings.Join(path, " → ")
		}
		errs = append(errs, &ConfigError{Relay: i, Name: r.Name, Key: "targets", Value: strconv.Quote(path[0]),
			Err: fmt.Errorf("%s: each client would go round until every descriptor is gone", msg)})
	}
	if admin != "" && admin != "off" {
		if ak, err := checkListen("tcp", admin); err == nil {
			for i, e := range ends {
				if e.ok && e.listen.overlaps(ak) {
					r := &c.Relays[i]
					errs = append(errs, &ConfigError{Relay: i, Name: r.Name, Key: "listen", Value: strconv.Quote(r.Listen),
						Err: fmt.Errorf("is the admin endpoint's address (admin = %q)", admin)})
				}
			}
		}
	}
	return errs
}
