package main

import (
	"fmt"

	"github.com/softnet-go/softnet/netq"
	"github.com/softnet-go/softnet/relay"
)

// memory is what the daemon sets up below the relays: the softnet workers and the
// memory limit of the mbuf zones.
type memory struct {
	workers *netq.Group // nil: netq.Default()
}

func newMemory(cfg *relay.Config) (*memory, error) {
	m := &memory{}
	if cfg.Workers > 0 {
		g, err := netq.NewGroup(cfg.Workers)
		if err != nil {
			return nil, fmt.Errorf("starting %d workers: %w", cfg.Workers, err)
		}
		m.workers = g
	}
	if err := m.setLimit(cfg.MemLimit); err != nil {
		return nil, err
	}
	return m, nil
}

// setLimit sets the memory limit of the mbuf zones.
func (m *memory) setLimit(n int64) error {
	return nil // wired to mbuf.Limit() when package mbuf lands
}

// adminOptions are the memory statistics the admin endpoint serves.
func (m *memory) adminOptions() relay.AdminOptions {
	return relay.AdminOptions{}
}

// memorySummary is the zone statistics at the end of a benchmark.
type memorySummary struct {
	Report string `json:"report"`
}

// summary returns the zone statistics, or nil before package mbuf reports them.
func (m *memory) summary() *memorySummary {
	return nil
}
