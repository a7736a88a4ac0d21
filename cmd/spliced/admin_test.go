package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/softnet-go/softnet/relay"
)

func TestAdminEndpoint(t *testing.T) {
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--mode", testMode, "--admin-pprof")
	if s := d.get("/healthz"); s != "ok\n" {
		t.Errorf("/healthz: %q", s)
	}
	if s := d.get("/debug/pprof/"); !strings.Contains(s, "goroutine") {
		t.Errorf("/debug/pprof/: %q", s)
	}
	mbuf := d.get("/debug/mbuf")
	if !strings.Contains(mbuf, "mbuf") {
		t.Errorf("/debug/mbuf: %q", mbuf)
	}
	code, out, errs := spliced(t, "stat", "--admin", d.admin)
	if code != 0 || out != mbuf {
		t.Errorf("spliced stat: exit %d, %q (stderr %q); /debug/mbuf gave %q", code, out, errs, mbuf)
	}
	mf := d.metrics()
	for _, name := range []string{"spliced_mem_limit_bytes", "spliced_mem_used_bytes", "spliced_zone_in_use"} {
		if mf[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
}

func TestStatNoDaemon(t *testing.T) {
	ln, _ := netListen()
	addr := ln.Addr().String()
	ln.Close()
	code, _, errs := spliced(t, "stat", "--admin", addr)
	if code != 1 || !strings.Contains(errs, "connection refused") {
		t.Errorf("exit %d, %q", code, errs)
	}
}

func TestAdminLoopbackOnly(t *testing.T) {
	code, _, errs := spliced(t, "run", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--admin", ":6060")
	if code != 2 || !strings.Contains(errs, "--admin-public") {
		t.Errorf("exit %d, %q", code, errs)
	}
}

// TestWorkersAndMemLimit checks that --workers and --mem-limit take effect: data flows
// on one worker under a small memory limit, which /metrics reports.
func TestWorkersAndMemLimit(t *testing.T) {
	target := tcpTarget(t, echo)
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", target, "--mode", "user", "--workers", "1", "--mem-limit", "2MiB")
	data := make([]byte, 8<<20)
	c := dial(t, d.addr())
	go func() {
		c.Write(data)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || len(got) != len(data) {
		t.Fatalf("%d bytes back of %d through a 2MiB limit: %v", len(got), len(data), err)
	}
	mf := d.metrics()
	if v := metric(mf, "spliced_mem_limit_bytes"); v != 2<<20 {
		t.Errorf("spliced_mem_limit_bytes = %v", v)
	}
	if v := metric(mf, "spliced_mem_peak_bytes"); v <= 0 || v > 2<<20 {
		t.Errorf("spliced_mem_peak_bytes = %v, want within the limit", v)
	}
}

// adminStatus does GET path on the admin endpoint addr, with "Authorization: Bearer
// TOKEN" if token is not empty, on a connection of its own, and returns the status, the
// WWW-Authenticate header and the body.
func adminStatus(t *testing.T, addr, path, token string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// writeFile writes text to a new file of t's and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAdminPprof: /debug/pprof/ is not served unless --admin-pprof asks for it.
func TestAdminPprof(t *testing.T) {
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--mode", testMode)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1", "/debug/pprof/goroutine"} {
		if code, _, body := adminStatus(t, d.admin, path, ""); code != http.StatusNotFound {
			t.Errorf("by default, GET %s: %d, want 404\n%s", path, code, body)
		}
	}
	if code, _, _ := adminStatus(t, d.admin, "/metrics", ""); code != http.StatusOK {
		t.Errorf("by default, GET /metrics: %d", code)
	}

	d = startDaemon(t, "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--mode", testMode, "--admin-pprof")
	if code, _, body := adminStatus(t, d.admin, "/debug/pprof/", ""); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("--admin-pprof: GET /debug/pprof/: %d\n%s", code, body)
	}
}

// TestAdminToken: with --admin-public and --admin-token-file, every path but /healthz
// wants the token.
func TestAdminToken(t *testing.T) {
	const token = "3f6c0a9e1b7d4c25a8e09f1d2b3c4a5e"
	file := writeFile(t, "token", "\n  "+token+"\n")
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--mode", testMode,
		"--admin", "127.0.0.1:0", "--admin-public", "--admin-token-file", file, "--admin-pprof")
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/mbuf"} {
		for _, bad := range []string{"", "wrong-token-wrong-token-wrong-tok", token[:len(token)-1], token + "0"} {
			code, auth, body := adminStatus(t, d.admin, path, bad)
			if code != http.StatusUnauthorized || auth != `Bearer realm="spliced"` {
				t.Errorf("GET %s with token %q: %d, WWW-Authenticate %q, want 401\n%s", path, bad, code, auth, body)
			}
		}
		if code, _, body := adminStatus(t, d.admin, path, token); code != http.StatusOK {
			t.Errorf("GET %s with the token: %d\n%s", path, code, body)
		}
	}
	if code, _, body := adminStatus(t, d.admin, "/healthz", ""); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz without the token: %d %q", code, body)
	}
	if rec := d.waitLog("admin endpoint"); rec["token"] != true || rec["pprof"] != true {
		t.Errorf("admin endpoint log: %v", rec)
	}
	if strings.Contains(d.logText(), token) {
		t.Error("the log shows the token")
	}
}

// TestAdminTokenRequired: --admin-public (admin_public) without a token file, or with a
// token file that gives no usable token, is a configuration error: exit 2, naming the
// flag or key and the file.
func TestAdminTokenRequired(t *testing.T) {
	run := []string{"run", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--mode", testMode}
	short := writeFile(t, "short", "  too-short-tok \n")
	missing := filepath.Join(t.TempDir(), "missing")
	relays := "[[relay]]\nlisten = \"127.0.0.1:0\"\ntargets = [\"127.0.0.1:1\"]\n"
	public := writeFile(t, "public.toml", "admin = \"0.0.0.0:0\"\nadmin_public = true\n"+relays)
	shortConf := writeFile(t, "short.toml", "admin = \"127.0.0.1:0\"\nadmin_token_file = \""+short+"\"\n"+relays)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{append(run, "--admin", "0.0.0.0:0", "--admin-public"), []string{"--admin-token-file", "required with admin_public (--admin-public)"}},
		{append(run, "--admin", "127.0.0.1:0", "--admin-public"), []string{"--admin-token-file", "required"}},
		{append(run, "--admin", "127.0.0.1:0", "--admin-token-file", short), []string{"--admin-token-file " + short, "13 bytes, want at least 16"}},
		{append(run, "--admin", "127.0.0.1:0", "--admin-public", "--admin-token-file", short), []string{"--admin-token-file " + short, "at least 16"}},
		{append(run, "--admin", "127.0.0.1:0", "--admin-token-file", missing), []string{"--admin-token-file " + missing, "no such file"}},
		{[]string{"run", "--config", public}, []string{public, "admin_token_file", "required with admin_public"}},
		{[]string{"run", "--config", shortConf}, []string{shortConf, "admin_token_file", short, "at least 16"}},
		{[]string{"run", "--config", shortConf, "--admin-token-file", missing}, []string{"--admin-token-file " + missing, "no such file"}},
	} {
		code, out, errs := spliced(t, tc.args...)
		if code != 2 {
			t.Errorf("spliced %q: exit %d, want 2 (stdout %q, stderr %q)", tc.args, code, out, errs)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("spliced %q: stderr %q does not name %q", tc.args, errs, w)
			}
		}
	}
}

// adminConn is a raw keep-alive connection to the admin endpoint.
type adminConn struct {
	net.Conn
	r *bufio.Reader
}

func dialAdmin(t *testing.T, addr string) *adminConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &adminConn{c, bufio.NewReader(c)}
}

// send writes a GET of /healthz.
func (c *adminConn) send() error {
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: spliced\r\n\r\n")
	return err
}

// answer reads the response to a request sent, waiting at most within, and returns its
// status.
func (c *adminConn) answer(within time.Duration) (int, error) {
	c.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// TestAdminConnCap: the daemon serves at most adminMaxConns admin connections at once;
// the ones beyond wait, unserved, until served ones close.
func TestAdminConnCap(t *testing.T) {
	d := startDaemon(t, "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--mode", testMode)
	held := make([]*adminConn, adminMaxConns)
	for i := range held {
		held[i] = dialAdmin(t, d.admin)
		if err := held[i].send(); err != nil {
			t.Fatal(err)
		}
		if code, err := held[i].answer(5 * time.Second); code != http.StatusOK {
			t.Fatalf("connection %d of %d: %d %v", i+1, adminMaxConns, code, err)
		}
	}
	// Every slot is taken by a keep-alive connection: two more connect (the kernel
	// completes the handshake) but get no answer.
	extra := []*adminConn{dialAdmin(t, d.admin), dialAdmin(t, d.admin)}
	for i, c := range extra {
		if err := c.send(); err != nil {
			t.Fatal(err)
		}
		var ne net.Error
		if code, err := c.answer(500 * time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("connection %d beyond the cap answered: %d %v", i+1, code, err)
		}
	}
	// The held connections are still served.
	if err := held[1].send(); err != nil {
		t.Fatal(err)
	}
	if code, err := held[1].answer(5 * time.Second); code != http.StatusOK {
		t.Fatalf("held connection: %d %v", code, err)
	}
	// As held connections close, the waiting ones are served.
	for i, c := range extra {
		held[i].Close()
		if code, err := c.answer(5 * time.Second); code != http.StatusOK {
			t.Fatalf("connection %d beyond the cap, after one closed: %d %v", i+1, code, err)
		}
	}
}

// TestAdminServerLimits checks the admin server's configured limits against what the
// endpoint promises: a header within 10 s, idle keep-alive connections closed within
// 60 s, small headers, a connection cap.
func TestAdminServerLimits(t *testing.T) {
	s := adminServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if s.ReadHeaderTimeout != adminReadHeaderTimeout || s.ReadHeaderTimeout <= 0 || s.ReadHeaderTimeout > 10*time.Second {
		t.Errorf("ReadHeaderTimeout %v", s.ReadHeaderTimeout)
	}
	if s.ReadTimeout != adminReadTimeout || s.ReadTimeout < s.ReadHeaderTimeout {
		t.Errorf("ReadTimeout %v", s.ReadTimeout)
	}
	if s.WriteTimeout != adminWriteTimeout || s.WriteTimeout <= 0 {
		t.Errorf("WriteTimeout %v", s.WriteTimeout)
	}
	if s.IdleTimeout != adminIdleTimeout || s.IdleTimeout <= 0 || s.IdleTimeout > 60*time.Second {
		t.Errorf("IdleTimeout %v", s.IdleTimeout)
	}
	if s.MaxHeaderBytes != adminMaxHeaderBytes || s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes > 16<<10 {
		t.Errorf("MaxHeaderBytes %d", s.MaxHeaderBytes)
	}
	if adminMaxConns < 4 || adminMaxConns > 256 {
		t.Errorf("adminMaxConns %d", adminMaxConns)
	}
}

// serveAdmin serves h on a loopback listener of adminListen with the server of
// adminServer, after adjust has shortened its timeouts; it stops with t.
func serveAdmin(t *testing.T, h http.Handler, adjust func(*http.Server)) string {
	t.Helper()
	ln, err := adminListen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := adminServer(h, slog.New(slog.DiscardHandler))
	adjust(s)
	done := make(chan struct{})
	go func() {
		s.Serve(ln)
		close(done)
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return ln.Addr().String()
}

// TestAdminTimeouts: the server closes a keep-alive connection left idle, and one that
// sends no complete header; shortened here, their real values are checked by
// TestAdminServerLimits.
func TestAdminTimeouts(t *testing.T) {
	addr := serveAdmin(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }),
		func(s *http.Server) { s.IdleTimeout, s.ReadHeaderTimeout = 200*time.Millisecond, 200*time.Millisecond })

	c := dialAdmin(t, addr)
	if err := c.send(); err != nil {
		t.Fatal(err)
	}
	if code, err := c.answer(5 * time.Second); code != http.StatusOK {
		t.Fatalf("%d %v", code, err)
	}
	start := time.Now()
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Errorf("idle keep-alive connection: %v, want it closed by the server", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("idle keep-alive connection closed after %v, before the idle timeout", d)
	}

	c = dialAdmin(t, addr)
	io.WriteString(c, "GET /healthz HTTP/1.1\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(c) // the server may answer 408 before it closes
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Error("a connection that sends half a header is not closed")
	}
}

// TestAdminProfileWriteTimeout: the write timeout does not cut a CPU profile or a trace
// that lasts longer: pprof moves the write deadline by the duration asked. Shortened
// here to 1 s against profiles of 2 s; with the real values, 30 s against 30 s.
func TestAdminProfileWriteTimeout(t *testing.T) {
	srv := relay.NewServer(relay.ServerOptions{Log: slog.New(slog.DiscardHandler)})
	defer srv.Shutdown(context.Background())
	addr := serveAdmin(t, relay.Handler(srv, relay.HandlerOptions{Pprof: true}),
		func(s *http.Server) { s.WriteTimeout = time.Second })
	for _, tc := range []struct{ path, magic string }{
		{"/debug/pprof/profile?seconds=2", "\x1f\x8b"}, // gzipped protobuf
		{"/debug/pprof/trace?seconds=2", "go 1."},
	} {
		code, _, body := adminStatus(t, addr, tc.path, "")
		if code != http.StatusOK || !strings.HasPrefix(body, tc.magic) {
			t.Errorf("GET %s: %d, %d bytes %.16q", tc.path, code, len(body), body)
		}
	}
}

// TestAdminReloadKeepsToken: SIGHUP does not change the admin settings of the running
// daemon, even when the file no longer asks for the token or pprof.
func TestAdminReloadKeepsToken(t *testing.T) {
	const token = "reload-token-0123456789"
	file := writeFile(t, "token", token)
	relays := "[[relay]]\nname = \"r\"\nlisten = \"127.0.0.1:0\"\ntargets = [\"127.0.0.1:1\"]\n"
	conf := writeFile(t, "spliced.toml", "admin_pprof = true\nadmin_token_file = \""+file+"\"\n"+relays)
	d := startDaemon(t, "--config", conf)
	if err := os.WriteFile(conf, []byte(relays), 0o600); err != nil {
		t.Fatal(err)
	}
	d.signal(syscall.SIGHUP, 0)
	d.waitLog("configuration reloaded")
	if code, _, _ := adminStatus(t, d.admin, "/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("after SIGHUP, GET /metrics without the token: %d, want 401", code)
	}
	if code, _, _ := adminStatus(t, d.admin, "/debug/pprof/", token); code != http.StatusOK {
		t.Errorf("after SIGHUP, GET /debug/pprof/ with the token: %d, want 200", code)
	}
}
