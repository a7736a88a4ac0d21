package main

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"

	"github.com/softnet-go/softnet/mbuf"
	"github.com/softnet-go/softnet/netq"
	"github.com/softnet-go/softnet/relay"
)

// memory is what the daemon sets up below the relays: the softnet workers and the
// memory limit of the mbuf zones.
type memory struct {
	workers *netq.Group // nil: netq.Default()
	nworker int         // cfg.Workers: 0 is one per CPU
}

func newMemory(cfg *relay.Config) (*memory, error) {
	m := &memory{nworker: cfg.Workers}
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

// setLimit sets the memory limit of the mbuf zones (0: unlimited). It refuses a limit
// below what the workers need to move one flow each (mbuf.MinLimit), at start and at
// SIGHUP alike.
func (m *memory) setLimit(n int64) error {
	if err := memLimitFloor(n, m.nworker); err != nil {
		return fmt.Errorf("memory limit %s: %w", relay.FormatSize(n), err)
	}
	if err := mbuf.SetLimit(n, m.nworker); err != nil {
		return fmt.Errorf("memory limit %s: %w", relay.FormatSize(n), err)
	}
	return nil
}

// memLimitFloor refuses a non-zero memory limit below mbuf.MinLimit(workers): the kegs
// charge whole slabs, and under that floor a flow can wait for ever for a slab that
// never fits. workers 0 is one per CPU.
func memLimitFloor(limit int64, workers int) error {
	floor := mbuf.MinLimit(workers)
	if limit == 0 || limit >= floor {
		return nil
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	who := fmt.Sprintf("%d workers need", workers)
	if workers == 1 {
		who = "1 worker needs"
	}
	return fmt.Errorf("must be 0 (unlimited) or at least %s (what %s to move one flow each)", relay.FormatSize(floor), who)
}

// memLimitUsage is the help of --mem-limit, with the floor this machine's default worker
// count needs.
func memLimitUsage() string {
	return fmt.Sprintf("limit the memory of every mbuf and cluster zone to `SIZE`; 0 is unlimited; "+
		"a limit below what the workers need to move one flow each is refused (on this machine %s for --workers 1, %s for the default of %d)",
		relay.FormatSize(mbuf.MinLimit(1)), relay.FormatSize(mbuf.MinLimit(0)), runtime.GOMAXPROCS(0))
}

// checkMemLimit is the configuration check of the memory limit against its floor, as a
// *relay.ConfigError naming the key (and so, from flags, --mem-limit); file is the
// configuration file, if any.
func checkMemLimit(cfg *relay.Config, file string) error {
	err := memLimitFloor(cfg.MemLimit, cfg.Workers)
	if err == nil {
		return nil
	}
	return &relay.ConfigError{File: file, Relay: -1, Key: "mem_limit", Value: sizeText(cfg.MemLimit), Err: err}
}

// sizeText writes n as a SIZE flag takes it: with a binary suffix when one fits exactly.
func sizeText(n int64) string {
	if n%1024 != 0 {
		return strconv.FormatInt(n, 10)
	}
	return relay.FormatSize(n)
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
