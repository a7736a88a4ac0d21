package relay

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"
)

// resolveEvery is how often the host names of targets are looked up again. A name that
// fails to resolve keeps its last good answer: a DNS server that is down or silent must
// not take the relay's targets with it.
const resolveEvery = 30 * time.Second

// A target is one configured target, host:port, with the addresses its host resolved to.
// The addresses are looked up when the relay's configuration is applied and refreshed in
// the background, never on the accept path: a flow reads the last answer with one atomic
// load.
type target struct {
	name  string // as configured, for logs and metrics
	host  string // a host name, or "" for a numeric address
	port  uint16
	addrs atomic.Pointer[[]netip.AddrPort]
}

// lookupFunc looks a host name up; net.DefaultResolver.LookupNetIP in production.
type lookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

// newTargets parses and resolves a relay's targets, looking each host name up once,
// bounded by resolveTimeout.
func newTargets(names []string, lookup lookupFunc) ([]*target, error) {
	ts := make([]*target, 0, len(names))
	for _, name := range names {
		host, port, err := splitHostPort(name, 1)
		if err != nil {
			return nil, fmt.Errorf("target %q: %w", name, err)
		}
		t := &target{name: name, port: port}
		if ip, err := netip.ParseAddr(host); err == nil {
			addrs := []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), t.port)}
			t.addrs.Store(&addrs)
		} else {
			t.host = host
			if err := t.resolve(lookup); err != nil {
				return nil, fmt.Errorf("target %q: %w", name, err)
			}
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// resolve looks t's host name up and keeps the answer if there is one; on failure the
// last good answer stays.
func (t *target) resolve(lookup lookupFunc) error {
	if t.host == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	ips, err := lookup(ctx, "ip", t.host)
	if err == nil && len(ips) == 0 {
		err = fmt.Errorf("host %q has no address", t.host)
	}
	if err != nil {
		return err
	}
	addrs := make([]netip.AddrPort, len(ips))
	for i, ip := range ips {
		addrs[i] = netip.AddrPortFrom(ip.Unmap(), t.port)
	}
	t.addrs.Store(&addrs)
	return nil
}

// addr returns the address to connect to: the first of the last answer.
func (t *target) addr() netip.AddrPort {
	return (*t.addrs.Load())[0]
}

// hasNames reports whether any of ts is a host name, to be refreshed.
func hasNames(ts []*target) bool {
	for _, t := range ts {
		if t.host != "" {
			return true
		}
	}
	return false
}
