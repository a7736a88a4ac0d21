package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/softnet-go/softnet/relay"
	"golang.org/x/net/netutil"
)

// The limits of the admin endpoint's HTTP server. Together they bound what a client that
// connects and stalls can hold: a connection slot for at most adminReadTimeout while it
// sends a request, adminWriteTimeout while it reads the answer, adminIdleTimeout
// between requests.
const (
	// adminMaxConns caps the connections the admin endpoint serves at once. Beyond it,
	// new connections wait in the listen backlog (the kernel completes their handshake,
	// the daemon does not accept them) until a served one closes, so that clients of the
	// admin endpoint cannot take the descriptors the relays need. A Prometheus scraper
	// and an operator need a handful.
	adminMaxConns = 64
	// adminReadHeaderTimeout bounds the reading of a request's header, from the
	// connection's accept or, on a keep-alive connection, from the first byte of the
	// next request.
	adminReadHeaderTimeout = 10 * time.Second
	// adminReadTimeout bounds the reading of a whole request, header and body. The
	// endpoint takes no bodies but pprof's symbol lookups, which are small. It does not
	// limit a handler that runs longer: once a request has been read, the server clears
	// the read deadline.
	adminReadTimeout = 15 * time.Second
	// adminWriteTimeout bounds the writing of a response, from the end of its request's
	// header: /metrics and /debug/mbuf take milliseconds. net/http/pprof's CPU profile
	// and trace handlers, which sleep for the duration asked (?seconds=, 30 s for a CPU
	// profile by default), move the write deadline of their response to
	// adminWriteTimeout plus that duration, so that no profile is cut short by it.
	adminWriteTimeout = 30 * time.Second
	// adminIdleTimeout closes a keep-alive connection that sends no new request for this
	// long.
	adminIdleTimeout = 60 * time.Second
	// adminMaxHeaderBytes bounds a request's header: the endpoint's requests carry a
	// path and a token.
	adminMaxHeaderBytes = 16 << 10
)

// The bounds of an admin token read from --admin-token-file.
const (
	// minAdminToken is the fewest bytes a token may have: 16 random printable bytes
	// are about 100 bits.
	minAdminToken = 16
	// maxAdminTokenFile is the largest token file read: a token is one line.
	maxAdminTokenFile = 4096
)

// startAdmin starts the admin endpoint of srv on cfg.Admin, with pprof if cfg.AdminPprof
// and, if token is not empty, behind that bearer token. It returns the running server,
// for Shutdown, or nil if cfg.Admin is "off".
func startAdmin(cfg *relay.Config, token []byte, srv *relay.Server, log *slog.Logger) (*http.Server, error) {
	if cfg.Admin == "off" {
		return nil, nil
	}
	ln, err := adminListen(cfg.Admin)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint: %w", err)
	}
	admin := adminServer(relay.Handler(srv, relay.HandlerOptions{Pprof: cfg.AdminPprof, Token: token}), log)
	go admin.Serve(ln)
	log.Info("admin endpoint", "addr", ln.Addr().String(), "pprof", cfg.AdminPprof, "token", len(token) > 0)
	return admin, nil
}

// adminListen listens on addr for the admin endpoint, accepting at most adminMaxConns
// connections at once.
func adminListen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return netutil.LimitListener(ln, adminMaxConns), nil
}

// adminServer returns the admin endpoint's HTTP server for h, with its timeouts and
// limits; the server's own errors (a failed accept, a panic in a handler) go to log.
func adminServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: adminReadHeaderTimeout,
		ReadTimeout:       adminReadTimeout,
		WriteTimeout:      adminWriteTimeout,
		IdleTimeout:       adminIdleTimeout,
		MaxHeaderBytes:    adminMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// loadAdminToken reads the admin endpoint's bearer token from cfg.AdminTokenFile, if the
// endpoint is on and the file is set; nil if not. flag tells whether the file came from
// --admin-token-file rather than the configuration file configFile, for the message of
// the error.
func loadAdminToken(cfg *relay.Config, flag bool, configFile string) ([]byte, error) {
	if cfg.Admin == "off" || cfg.AdminTokenFile == "" {
		return nil, nil
	}
	token, err := readAdminToken(cfg.AdminTokenFile)
	if err == nil {
		return token, nil
	}
	if flag {
		return nil, fmt.Errorf("--admin-token-file %s: %w", cfg.AdminTokenFile, err)
	}
	return nil, fmt.Errorf("%s: admin_token_file = %q: %w", configFile, cfg.AdminTokenFile, err)
}

// readAdminToken reads a bearer token from the file path: one token of printable ASCII
// without spaces, at least minAdminToken bytes, with any whitespace around it.
func readAdminToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxAdminTokenFile+1))
	if err != nil {
		return nil, unwrapPath(err)
	}
	if len(data) > maxAdminTokenFile {
		return nil, fmt.Errorf("longer than %d bytes: want one token", maxAdminTokenFile)
	}
	token := bytes.TrimSpace(data)
	for _, b := range token {
		if b <= ' ' || b > '~' {
			return nil, errors.New("the token must be printable ASCII without spaces")
		}
	}
	if len(token) < minAdminToken {
		return nil, fmt.Errorf("the token has %d bytes, want at least %d (such as the output of `openssl rand -hex 32`)",
			len(token), minAdminToken)
	}
	return token, nil
}

// unwrapPath returns the error of a *fs.PathError without its path, which the caller
// names already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
