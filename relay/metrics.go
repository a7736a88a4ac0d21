package relay

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/softnet-go/softnet/mbuf"
	"github.com/softnet-go/softnet/uma"
)

// Metric descriptions; every name starts with spliced_.
var (
	descAccepted = prometheus.NewDesc("spliced_flows_accepted_total",
		"Clients accepted (TCP) or new client addresses (UDP), by relay.", []string{"relay"}, nil)
	descActive = prometheus.NewDesc("spliced_flows_active",
		"Flows open now: target connected, at least one direction still moving.", []string{"relay"}, nil)
	descFailed = prometheus.NewDesc("spliced_flows_failed_total",
		"Flows that never started, by reason (connect: no target reachable).", []string{"relay", "reason"}, nil)
	descRefused = prometheus.NewDesc("spliced_flows_refused_total",
		"Clients closed at once, before any target connect, because a cap was met, by reason: "+
			"max_flows (the daemon's), max_flows_per_source, new_flows_per_source.", []string{"relay", "reason"}, nil)
	descTargetFail = prometheus.NewDesc("spliced_target_failures_total",
		"Connects to a target that failed (refused, unreachable, timed out); the next target was tried.",
		[]string{"relay", "target"}, nil)
	descDropped = prometheus.NewDesc("spliced_datagrams_dropped_total",
		"UDP datagrams read from a client that the relay could not send on, by reason: nobufs "+
			"(the memory limit), no_flow (the client's flow could not be set up), error. Drops in the kernel's socket buffers are not counted here.",
		[]string{"relay", "reason"}, nil)
	descBytes = prometheus.NewDesc("spliced_bytes_total",
		"Bytes moved, by relay and direction (to_target: client to target; to_client: target to client).",
		[]string{"relay", "direction"}, nil)
	descEndings = prometheus.NewDesc("spliced_splice_endings_total",
		"Directions of flows that ended, by reason: eof, max (EFBIG), idle (the idle timeout), timeout (ETIMEDOUT: keepalive "+
			"or retransmissions gave up on a vanished peer), pipe (EPIPE), "+
			"reset (ECONNRESET), refused, msgsize, nobufs, closed (by the relay), error.",
		[]string{"relay", "direction", "reason"}, nil)

	descBuildInfo = prometheus.NewDesc("spliced_build_info",
		"1, labelled with the daemon's version and the Go version it was built with.", []string{"version", "goversion"}, nil)
	descReloadOK = prometheus.NewDesc("spliced_config_reload_success",
		"Whether the last configuration reload (SIGHUP) was applied whole: 1, or 0 if it was refused or a relay did not start.", nil, nil)
	descReloadAt = prometheus.NewDesc("spliced_config_reload_timestamp_seconds",
		"When the configuration in force was last applied whole (start or reload), in Unix seconds.", nil, nil)

	descZoneInUse = prometheus.NewDesc("spliced_zone_in_use",
		"Items handed out and not freed, by zone.", []string{"zone"}, nil)
	descZoneCached = prometheus.NewDesc("spliced_zone_cached",
		"Items cached in per-CPU buckets and the zone's bucket cache, by zone.", []string{"zone"}, nil)
	descZoneItemSize = prometheus.NewDesc("spliced_zone_item_bytes",
		"Bytes each item of the zone stands for.", []string{"zone"}, nil)
	descZoneLimit = prometheus.NewDesc("spliced_zone_limit_items",
		"The zone's own item limit; 0 is none (the memory limit still applies).", []string{"zone"}, nil)
	descZoneRequests = prometheus.NewDesc("spliced_zone_requests_total",
		"Successful allocations, by zone.", []string{"zone"}, nil)
	descZoneFailures = prometheus.NewDesc("spliced_zone_failures_total",
		"Non-blocking allocations refused with ENOBUFS, by zone.", []string{"zone"}, nil)
	descZoneSleeps = prometheus.NewDesc("spliced_zone_sleeps_total",
		"Allocations that had to wait for memory, by zone.", []string{"zone"}, nil)

	descMemLimit = prometheus.NewDesc("spliced_mem_limit_bytes",
		"The memory limit over every mbuf and cluster zone; 0 is unlimited.", nil, nil)
	descMemUsed = prometheus.NewDesc("spliced_mem_used_bytes",
		"Bytes of slabs charged to the memory limit.", nil, nil)
	descMemPeak = prometheus.NewDesc("spliced_mem_peak_bytes",
		"The most bytes ever charged to the memory limit at once.", nil, nil)
	descMemWaiters = prometheus.NewDesc("spliced_mem_waiters",
		"Allocations waiting for memory now.", nil, nil)
	descMemRefused = prometheus.NewDesc("spliced_mem_refused_total",
		"Slab charges refused at the memory limit.", nil, nil)
	descMemWakeups = prometheus.NewDesc("spliced_mem_wakeups_total",
		"Wake-up runs for allocations waiting on the memory limit.", nil, nil)
)

// collector exports a Server's counts and the mbuf zones as Prometheus metrics, read
// when scraped.
type collector struct {
	srv *Server
}

// NewCollector returns a Prometheus collector of the relays of srv and of the memory
// they use: per relay, flows accepted, active and failed, target failures, bytes each
// way and splice endings by reason; per mbuf zone, items in use and cached, item size,
// limit, requests, failures and sleeps; and the memory limit.
func NewCollector(srv *Server) prometheus.Collector {
	return &collector{srv: srv}
}

// Zones returns the statistics of every mbuf and cluster zone.
func Zones(s *mbuf.Stat) []uma.ZoneStats {
	return []uma.ZoneStats{s.Mbuf, s.Packet, s.Cluster, s.JumboPage, s.Jumbo9, s.Jumbo16, s.Jumbo64, s.ExtRef}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAccepted, descActive, descFailed, descRefused, descTargetFail, descDropped, descBytes,
		descEndings, descZoneInUse, descZoneCached, descZoneItemSize, descZoneLimit, descZoneRequests,
		descZoneFailures, descZoneSleeps, descMemLimit, descMemUsed, descMemPeak, descMemWaiters,
		descMemRefused, descMemWakeups, descBuildInfo, descReloadOK, descReloadAt} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for _, rec := range c.srv.allRecords() {
		sn := rec.stats.snapshot(rec.flows)
		counter(descAccepted, sn.accepted, sn.name)
		gauge(descActive, int64(sn.active), sn.name)
		for why, n := range sn.failed {
			counter(descFailed, n, sn.name, why)
		}
		for why, n := range sn.refused {
			counter(descRefused, n, sn.name, why)
		}
		for t, n := range sn.tfailed {
			counter(descTargetFail, n, sn.name, t)
		}
		for why, n := range sn.dropped {
			counter(descDropped, n, sn.name, why)
		}
		for dir := range 2 {
			counter(descBytes, sn.bytes[dir], sn.name, dirNames[dir])
			for why, n := range sn.endings[dir] {
				counter(descEndings, n, sn.name, dirNames[dir], why)
			}
		}
	}
	gauge(descBuildInfo, 1, c.srv.version, runtime.Version())
	ok := int64(0)
	if c.srv.reloadOK.Load() {
		ok = 1
	}
	gauge(descReloadOK, ok)
	gauge(descReloadAt, c.srv.reloadAt.Load())
	ms := mbuf.Stats()
	{
		for _, z := range Zones(&ms) {
			gauge(descZoneInUse, z.InUse, z.Name)
			gauge(descZoneCached, z.CachedP+z.CachedZone, z.Name)
			gauge(descZoneItemSize, z.ItemSize, z.Name)
			gauge(descZoneLimit, z.MaxItems, z.Name)
			counter(descZoneRequests, z.Requests, z.Name)
			counter(descZoneFailures, z.Failures, z.Name)
			counter(descZoneSleeps, z.Sleeps, z.Name)
		}
	}
	{
		l := ms.Limit
		gauge(descMemLimit, l.Max)
		gauge(descMemUsed, l.Used)
		gauge(descMemPeak, l.Peak)
		gauge(descMemWaiters, l.Waiters)
		counter(descMemRefused, l.Refused)
		counter(descMemWakeups, l.Wakeups)
	}
}
