package relay

import (
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/softnet-go/softnet/mbuf"
)

// HandlerOptions chooses what the admin endpoint serves and who may ask.
type HandlerOptions struct {
	// Pprof serves Go's profiles under /debug/pprof/. Off, those paths are 404: a CPU
	// profile or trace costs the daemon CPU, and the profiles show its internals.
	Pprof bool
	// Token, if not empty, is the bearer token every request but those of /healthz must
	// carry, as "Authorization: Bearer TOKEN"; a request without it, or with another
	// token, is answered 401. The comparison takes the same time whatever the token
	// given, its length included.
	Token []byte
}

// Handler returns the admin endpoint of srv:
//
//	/metrics       Prometheus text: the relays, the zones, the memory limit, Go and process
//	/debug/mbuf    the netstat -m report of the mbuf zones (mbuf.Report)
//	/debug/pprof/  Go's profiles, only with opt.Pprof
//	/healthz       200 "ok" while serving, 503 "draining" once a shutdown began; never
//	               behind the token
//	/readyz        200 "ready" while relays listen and no shutdown began, else 503
//
// With opt.Token, every other path (unknown ones too) requires the token.
func Handler(srv *Server, opt HandlerOptions) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(srv),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if srv.Draining() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "draining\n")
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if srv.Draining() || srv.Listening() == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready\n")
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("GET /debug/mbuf", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		mbuf.Report(w)
	})
	if opt.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if len(opt.Token) == 0 {
		return mux
	}
	return &bearerAuth{next: mux, want: sha256.Sum256(opt.Token)}
}

// bearerAuth passes to next the requests that carry the bearer token whose SHA-256
// digest is want, and those of /healthz; it answers every other one 401.
type bearerAuth struct {
	next http.Handler
	want [sha256.Size]byte
}

// ServeHTTP implements http.Handler.
func (a *bearerAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Only the exact path is exempt; a path the mux would clean to /healthz is
	// redirected there after passing through here.
	if r.URL.Path == "/healthz" || a.allowed(r.Header.Get("Authorization")) {
		a.next.ServeHTTP(w, r)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="spliced"`)
	http.Error(w, "401 unauthorized: this endpoint wants \"Authorization: Bearer TOKEN\"", http.StatusUnauthorized)
}

// allowed reports whether the Authorization header value h carries the token. Both
// tokens are hashed first, so that the constant-time comparison is of equal lengths
// and the time taken tells nothing of the token's length either.
func (a *bearerAuth) allowed(h string) bool {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], a.want[:]) == 1
}
