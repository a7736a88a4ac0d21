package relay

import (
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDroppedDatagramsMetric: the listener's drops reach /metrics by reason, and the
// collector passes the registry's consistency checks.
func TestDroppedDatagramsMetric(t *testing.T) {
	srv, _ := startServer(t, RelayConfig{Protocol: "udp", Targets: []string{"127.0.0.1:9"}})
	st := srv.allRecords()[0].stats
	st.drop(syscall.ENOBUFS)
	st.drop(syscall.ENOBUFS)
	st.drop(errNoFlow)
	st.drop(syscall.EPERM)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(srv)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "spliced_datagrams_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	want := map[string]float64{"nobufs": 2, "no_flow": 1, "error": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("spliced_datagrams_dropped_total{reason=%q} = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
