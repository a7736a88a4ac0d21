package relay

import (
	"io"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminOptions are what the admin endpoint serves besides the relays' own counts.
type AdminOptions struct {
	// Mem is the memory the relays use, for /metrics.
	Mem MemStats
	// Report writes the netstat -m report served at /debug/mbuf; nil serves 404.
	Report func(w io.Writer)
}

// Handler returns the admin endpoint of srv:
//
//	/metrics       Prometheus text: the relays, the zones, the memory limit, Go and process
//	/debug/mbuf    the netstat -m report
//	/debug/pprof/  Go's profiles
//	/healthz       200 "ok"
func Handler(srv *Server, opt AdminOptions) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(srv, opt.Mem),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /debug/mbuf", func(w http.ResponseWriter, r *http.Request) {
		if opt.Report == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		opt.Report(w)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
