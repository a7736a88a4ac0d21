package main

import (
	"bytes"
	"fmt"

	"github.com/softnet-go/softnet/mbuf"
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

// setLimit sets the memory limit of the mbuf zones (0: unlimited).
func (m *memory) setLimit(n int64) error {
	if err := mbuf.Limit().SetMax(n); err != nil {
		return fmt.Errorf("memory limit %s: %w", relay.FormatSize(n), err)
	}
	return nil
}

// memorySummary is the zone statistics at the end of a benchmark.
type memorySummary struct {
	Limit  memLimit   `json:"limit"`
	Zones  []zoneLine `json:"zones"`
	Report string     `json:"-"` // netstat -m
}

type memLimit struct {
	Max     int64 `json:"max_bytes"`
	Used    int64 `json:"used_bytes"`
	Peak    int64 `json:"peak_bytes"`
	Refused int64 `json:"refused"`
}

type zoneLine struct {
	Name     string `json:"name"`
	InUse    int64  `json:"in_use"`
	Cached   int64  `json:"cached"`
	Requests int64  `json:"requests"`
	Failures int64  `json:"failures"`
	Sleeps   int64  `json:"sleeps"`
}

// summary returns the zone statistics now.
func (m *memory) summary() *memorySummary {
	st := mbuf.Stats()
	s := &memorySummary{Limit: memLimit{st.Limit.Max, st.Limit.Used, st.Limit.Peak, st.Limit.Refused}}
	for _, z := range relay.Zones(&st) {
		s.Zones = append(s.Zones, zoneLine{z.Name, z.InUse, z.CachedP + z.CachedZone, z.Requests, z.Failures, z.Sleeps})
	}
	var b bytes.Buffer
	mbuf.Report(&b)
	s.Report = b.String()
	return s
}
