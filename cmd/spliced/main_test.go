package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the spliced binary the tests drive, built once by TestMain.
var binary string

// testMode is the mode the daemon tests relay in.
var testMode = "auto"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spliced-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "spliced")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// spliced runs the binary to completion (at most 30 s) and returns its exit status and
// output.
func spliced(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// daemon is a running `spliced run`.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	admin  string                                                            // admin endpoint address
	relays map[string]string                                                 // relay name → listen address
	dial   func(ctx context.Context, network, addr string) (net.Conn, error) // for the admin endpoint; nil: net's
	mu     sync.Mutex
	logs   []map[string]any
	exited chan struct{}
	code   int
}

// startDaemon starts `spliced run ARGS --log-format json --admin 127.0.0.1:0` and waits
// until it is ready.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	args = append([]string{"run", "--log-format", "json", "--log-level", "debug", "--admin", "127.0.0.1:0"}, args...)
	return launch(t, exec.Command(binary, args...), 10*time.Second)
}

// launch starts cmd, a `spliced run --log-format json`, possibly under a wrapper such as
// `ip netns exec`, records its log, and waits (at most within) until it is ready.
func launch(t *testing.T, cmd *exec.Cmd, within time.Duration) *daemon {
	t.Helper()
	d := &daemon{t: t, cmd: cmd, relays: map[string]string{}, exited: make(chan struct{})}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		readyOnce := sync.Once{}
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				rec = map[string]any{"msg": sc.Text()}
			}
			d.mu.Lock()
			d.logs = append(d.logs, rec)
			switch rec["msg"] {
			case "relay started":
				d.relays[rec["relay"].(string)] = rec["listen"].(string)
			case "admin endpoint":
				d.admin = rec["addr"].(string)
			}
			d.mu.Unlock()
			if rec["msg"] == "ready" {
				readyOnce.Do(func() { close(ready) })
			}
		}
		d.cmd.Wait()
		d.code = d.cmd.ProcessState.ExitCode()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.exited
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.logText())
		}
	})
	select {
	case <-ready:
	case <-d.exited:
		t.Fatalf("spliced exited with %d before it was ready:\n%s", d.code, d.logText())
	case <-time.After(within):
		t.Fatalf("spliced not ready in %v:\n%s", within, d.logText())
	}
	return d
}

func (d *daemon) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	for _, r := range d.logs {
		j, _ := json.Marshal(r)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// addr returns the address of the daemon's only relay.
func (d *daemon) addr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.relays) != 1 {
		d.t.Fatalf("want one relay, have %v", d.relays)
	}
	for _, a := range d.relays {
		return a
	}
	return ""
}

// signal sends sig and, for SIGINT and SIGTERM, waits (at most within) for the exit and
// returns its status.
func (d *daemon) signal(sig syscall.Signal, within time.Duration) int {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
	if sig == syscall.SIGHUP {
		return 0
	}
	select {
	case <-d.exited:
		return d.code
	case <-time.After(within):
		d.t.Fatalf("spliced did not exit within %v of %v:\n%s", within, sig, d.logText())
	}
	return -1
}

// waitLog waits for a log record with message msg.
func (d *daemon) waitLog(msg string) map[string]any {
	d.t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		d.mu.Lock()
		for _, r := range d.logs {
			if r["msg"] == msg {
				d.mu.Unlock()
				return r
			}
		}
		d.mu.Unlock()
	}
	d.t.Fatalf("no %q in the log:\n%s", msg, d.logText())
	return nil
}

// get fetches a path of the admin endpoint, which must answer 200.
func (d *daemon) get(path string) string {
	d.t.Helper()
	code, body := d.status(path)
	if code != 200 {
		d.t.Fatalf("GET %s: %d\n%s", path, code, body)
	}
	return body
}

// status fetches a path of the admin endpoint and returns its status code and body.
func (d *daemon) status(path string) (int, string) {
	d.t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	if d.dial != nil {
		tr := &http.Transport{DisableKeepAlives: true, DialContext: d.dial}
		defer tr.CloseIdleConnections()
		c.Transport = tr
	}
	resp, err := c.Get("http://" + d.admin + path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tcpTarget runs fn on every connection to a new loopback listener.
func tcpTarget(t *testing.T, fn func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				fn(c.(*net.TCPConn))
			}()
		}
	}()
	return ln.Addr().String()
}

func echo(c *net.TCPConn) {
	io.Copy(c, c)
	c.CloseWrite()
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}
