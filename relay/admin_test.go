package relay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// adminServer returns a Server with no relays, shut down with t.
func adminServer(t *testing.T) *Server {
	t.Helper()
	srv := NewServer(ServerOptions{Log: testLogger(t)})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

// adminGet serves GET path on h with the Authorization header auth, if not empty.
func adminGet(h http.Handler, path, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlerPprof(t *testing.T) {
	srv := adminServer(t)
	for _, tc := range []struct {
		pprof bool
		want  int
	}{{false, http.StatusNotFound}, {true, http.StatusOK}} {
		h := Handler(srv, HandlerOptions{Pprof: tc.pprof})
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
			if w := adminGet(h, path, ""); w.Code != tc.want {
				t.Errorf("Pprof %v: GET %s: %d, want %d", tc.pprof, path, w.Code, tc.want)
			}
		}
		// The rest of the endpoint is there either way.
		for _, path := range []string{"/metrics", "/debug/mbuf", "/healthz"} {
			if w := adminGet(h, path, ""); w.Code != http.StatusOK {
				t.Errorf("Pprof %v: GET %s: %d", tc.pprof, path, w.Code)
			}
		}
	}
}

func TestHandlerToken(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	h := Handler(adminServer(t), HandlerOptions{Pprof: true, Token: []byte(token)})
	for _, tc := range []struct {
		name, path, auth string
		want             int
	}{
		{"no header", "/metrics", "", http.StatusUnauthorized},
		{"no header, pprof", "/debug/pprof/", "", http.StatusUnauthorized},
		{"no header, mbuf", "/debug/mbuf", "", http.StatusUnauthorized},
		{"no header, unknown path", "/nowhere", "", http.StatusUnauthorized},
		{"wrong token", "/metrics", "Bearer " + strings.Repeat("x", len(token)), http.StatusUnauthorized},
		{"wrong token, one byte off", "/metrics", "Bearer " + token[:len(token)-1] + "0", http.StatusUnauthorized},
		{"shorter token", "/metrics", "Bearer " + token[:len(token)-1], http.StatusUnauthorized},
		{"longer token", "/metrics", "Bearer " + token + "0", http.StatusUnauthorized},
		{"prefix of the token", "/metrics", "Bearer " + token[:16], http.StatusUnauthorized},
		{"empty token", "/metrics", "Bearer ", http.StatusUnauthorized},
		{"no scheme", "/metrics", token, http.StatusUnauthorized},
		{"basic scheme", "/metrics", "Basic " + token, http.StatusUnauthorized},
		{"right token", "/metrics", "Bearer " + token, http.StatusOK},
		{"right token, scheme in lower case", "/metrics", "bearer " + token, http.StatusOK},
		{"right token, mbuf", "/debug/mbuf", "Bearer " + token, http.StatusOK},
		{"right token, pprof", "/debug/pprof/", "Bearer " + token, http.StatusOK},
		{"right token, unknown path", "/nowhere", "Bearer " + token, http.StatusNotFound},
		{"healthz without a token", "/healthz", "", http.StatusOK},
		{"healthz with a wrong token", "/healthz", "Bearer nope", http.StatusOK},
	} {
		w := adminGet(h, tc.path, tc.auth)
		if w.Code != tc.want {
			t.Errorf("%s: GET %s: %d, want %d\n%s", tc.name, tc.path, w.Code, tc.want, w.Body)
			continue
		}
		if w.Code != http.StatusUnauthorized {
			continue
		}
		if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="spliced"` {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, got)
		}
		if strings.Contains(w.Body.String(), token) {
			t.Errorf("%s: the 401 shows the token: %q", tc.name, w.Body)
		}
	}
	if w := adminGet(h, "/metrics", "Bearer "+token); !strings.Contains(w.Body.String(), "spliced_mem_limit_bytes") {
		t.Errorf("/metrics with the token: %q", w.Body)
	}
}

// TestHandlerTokenPath: only /healthz itself is exempt; a path the mux would clean to
// another one does not get past the token.
func TestHandlerTokenPath(t *testing.T) {
	h := Handler(adminServer(t), HandlerOptions{Token: []byte("0123456789abcdef")})
	for _, path := range []string{"/healthz/../metrics", "/./metrics", "//metrics", "/healthz/", "/HEALTHZ"} {
		if w := adminGet(h, path, ""); w.Code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", path, w.Code)
		}
	}
	r := httptest.NewRequest("POST", "/healthz", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d, want 405", w.Code)
	}
}

// TestAdminConfig: admin_pprof and admin_token_file load; admin_public without
// admin_token_file is refused, naming the key.
func TestAdminConfig(t *testing.T) {
	const relays = "\n[[relay]]\nname = \"a\"\nlisten = \"127.0.0.1:9000\"\ntargets = [\"127.0.0.1:80\"]\n"
	c, err := ParseConfig([]byte("admin = \"0.0.0.0:6060\"\nadmin_public = true\nadmin_pprof = true\n"+
		"admin_token_file = \"/etc/spliced/token\"\n"+relays), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.AdminPublic || !c.AdminPprof || c.AdminTokenFile != "/etc/spliced/token" {
		t.Errorf("admin settings: %+v", c)
	}
	c, err = ParseConfig([]byte(relays), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminPprof || c.AdminTokenFile != "" {
		t.Errorf("admin settings by default: %+v", c)
	}

	for _, tc := range []struct{ text, key, want string }{
		{"admin = \"0.0.0.0:6060\"\nadmin_public = true\n", "admin_token_file", "required with admin_public"},
		{"admin_public = true\n", "admin_token_file", "required with admin_public"},
		{"admin_pprof = \"yes\"\n", "admin_pprof", "want true or false"},
		{"admin_token_file = 1\n", "admin_token_file", "want a string"},
	} {
		_, err := ParseConfig([]byte(tc.text+relays), "t.toml")
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a ConfigError on %s saying %q", tc.text, err, tc.key, tc.want)
		}
	}
	// With the endpoint off, admin_public asks for nothing.
	if _, err := ParseConfig([]byte("admin = \"off\"\nadmin_public = true\n"+relays), "t.toml"); err != nil {
		t.Errorf("admin off: %v", err)
	}
}
