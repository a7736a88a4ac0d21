package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a third-party target (nginx, redis-server, iperf3 -s) the harness runs for a
// part of the run.
type server struct {
	*proc
	addr string
}

// startServer starts a target server and waits until it accepts on addr.
func startServer(name, addr, dir string, cmd *exec.Cmd) (*server, error) {
	recordCmd(name, name, cmd.Args)
	p, err := startProc(cmd, filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	if err := p.await(name, addr, false); err != nil {
		return nil, err
	}
	return &server{proc: p, addr: addr}, nil
}

// runTool runs a load generator bounded by timeout and returns its standard output.
func runTool(timeout time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return out, fmt.Errorf("%s: stopped after %v", name, timeout)
	}
	if err != nil {
		return out, fmt.Errorf("%s: %v: %s", name, err, lastLine(stderr.String()+" "))
	}
	return out, nil
}

// WrkResult is wrk against nginx through one relay.
type WrkResult struct {
	Row
	Conn   string  `json:"connection"` // keep-alive or close
	Reqs   int64   `json:"requests"`
	PerSec float64 `json:"requests_s"`
	Errors int64   `json:"errors"` // socket errors and non-2xx/3xx responses
	P50us  float64 `json:"p50_us"`
	P99us  float64 `json:"p99_us"`
	// RelayCPU is over the whole wrk run; CPUPerReq is it per request, in µs.
	RelayCPU  float64   `json:"relay_cpu_s"`
	CPUPerReq float64   `json:"relay_cpu_us_per_request"`
	Samples   []float64 `json:"samples,omitempty"`
	Err       string    `json:"error,omitempty"`
}

const nginxFile = "small.html"

// startNginx serves a small static file (128 bytes) from one worker process.
func startNginx(dir string) (*server, error) {
	root := filepath.Join(dir, "www")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	body := strings.Repeat("softnet!", 16) // 128 bytes
	if err := os.WriteFile(filepath.Join(root, nginxFile), []byte(body), 0o644); err != nil {
		return nil, err
	}
	addr := freePort("tcp")
	user := ""
	if os.Getuid() == 0 {
		user = "user root;\n" // the worker must read the files under the harness's temp directory
	}
	conf := fmt.Sprintf(`daemon off;
%sworker_processes 1;
pid %s/nginx.pid;
error_log %s/nginx-error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    sendfile on;
    tcp_nopush on;
    server {
        listen %s;
        root %s;
        location / { }
    }
}
`, user, dir, dir, addr, root)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	recordFile("nginx.conf", conf)
	return startServer("nginx", addr, dir, exec.Command("nginx", "-p", dir, "-c", path))
}

var (
	wrkReqs    = regexp.MustCompile(`(\d+) requests in`)
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkSock    = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// runWrk runs wrk (one thread, 32 connections) for dur against the small file through
// addr, with keep-alive or with Connection: close.
func runWrk(addr string, pid int, close bool, dur time.Duration) (WrkResult, error) {
	r := WrkResult{Conn: "keep-alive"}
	secs := max(1, int(dur.Round(time.Second)/time.Second))
	args := []string{"-t", "1", "-c", "32", "-d", fmt.Sprintf("%ds", secs), "--timeout", "2s", "--latency"}
	if close {
		r.Conn = "close"
		args = append(args, "-H", "Connection: close")
	}
	args = append(args, "http://"+addr+"/"+nginxFile)
	recordCmd("wrk", "wrk, "+r.Conn, append([]string{"wrk"}, args...))
	c0 := cpuOf(pid)
	out, err := runTool(time.Duration(secs)*time.Second+15*time.Second, "wrk", args...)
	r.RelayCPU = cpuOf(pid) - c0
	if err != nil {
		return r, err
	}
	s := string(out)
	m := wrkReqs.FindStringSubmatch(s)
	m2 := wrkRate.FindStringSubmatch(s)
	if m == nil || m2 == nil {
		return r, fmt.Errorf("wrk: cannot parse: %s", lastLine(s))
	}
	r.Reqs, _ = strconv.ParseInt(m[1], 10, 64)
	r.PerSec, _ = strconv.ParseFloat(m2[1], 64)
	if m := wrkSock.FindStringSubmatch(s); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.Errors += n
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.Errors += n
	}
	for _, m := range wrkLatency.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[3] {
		case "ms":
			v *= 1e3
		case "s":
			v *= 1e6
		}
		if m[1] == "50" {
			r.P50us = v
		} else {
			r.P99us = v
		}
	}
	if pid != 0 && r.Reqs > 0 {
		r.CPUPerReq = r.RelayCPU / float64(r.Reqs) * 1e6
	}
	if r.Reqs == 0 {
		return r, errors.New("wrk: no request completed")
	}
	return r, nil
}

// RedisResult is redis-benchmark through one relay, one test (GET or SET).
type RedisResult struct {
	Row
	Test   string  `json:"test"`
	PerSec float64 `json:"requests_s"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	// RelayCPU is over the whole redis-benchmark run (both tests); CPUPerReq is it per
	// request of both, in µs.
	RelayCPU  float64   `json:"relay_cpu_s"`
	CPUPerReq float64   `json:"relay_cpu_us_per_request"`
	Samples   []float64 `json:"samples,omitempty"`
	Err       string    `json:"error,omitempty"`
}

func startRedis(dir string) (*server, error) {
	addr := freePort("tcp")
	_, port, _ := net.SplitHostPort(addr)
	return startServer("redis-server", addr, dir, exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--logfile", ""))
}

// runRedis runs redis-benchmark -c 50 -t get,set with n requests per test through addr.
func runRedis(addr string, pid, n int) ([]RedisResult, error) {
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"-h", host, "-p", port, "-c", "50", "-n", strconv.Itoa(n), "-t", "get,set", "-q", "--csv"}
	recordCmd("redis-benchmark", "redis-benchmark", append([]string{"redis-benchmark"}, args...))
	c0 := cpuOf(pid)
	out, err := runTool(60*time.Second, "redis-benchmark", args...)
	cpu := cpuOf(pid) - c0
	if err != nil {
		return nil, err
	}
	recs, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark: %v", err)
	}
	var rs []RedisResult
	for _, rec := range recs {
		if len(rec) < 7 || rec[0] == "test" {
			continue
		}
		r := RedisResult{Test: rec[0], RelayCPU: cpu}
		r.PerSec, _ = strconv.ParseFloat(rec[1], 64)
		r.P50ms, _ = strconv.ParseFloat(rec[4], 64)
		r.P99ms, _ = strconv.ParseFloat(rec[6], 64)
		if pid != 0 {
			r.CPUPerReq = cpu / float64(2*n) * 1e6
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("redis-benchmark: no results: %s", lastLine(string(out)+" "))
	}
	return rs, nil
}

// IperfResult is iperf3 with parallel streams through one relay.
type IperfResult struct {
	Row
	Streams int     `json:"streams"`
	Gbits   float64 `json:"gbit_s"`
	// Retransmits is what iperf3 -J reports for the sending sockets (the client to the
	// relay hop; the relay's own sends to the server are not counted by iperf3).
	Retransmits int64 `json:"retransmits"`
	// SlowFast is the slowest stream's received bitrate over the fastest's (1: fair).
	SlowFast  float64   `json:"slowest_fastest_ratio"`
	RelayCPU  float64   `json:"relay_cpu_s"`
	PerCPU    float64   `json:"bytes_per_relay_cpu_s"`
	Samples   []float64 `json:"samples,omitempty"`
	Seconds   float64   `json:"seconds"`
	BytesRecv float64   `json:"bytes"`
	Err       string    `json:"error,omitempty"`
}

func startIperf(dir string) (*server, error) {
	addr := freePort("tcp")
	_, port, _ := net.SplitHostPort(addr)
	return startServer("iperf3", addr, dir, exec.Command("iperf3", "-s", "-B", "127.0.0.1", "-p", port))
}

type iperfJSON struct {
	End struct {
		Streams []struct {
			Receiver struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"receiver"`
		} `json:"streams"`
		SumSent struct {
			Retransmits int64 `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			Seconds       float64 `json:"seconds"`
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// runIperf runs iperf3 -P streams for secs seconds through addr.
func runIperf(addr string, pid, streams, secs int) (IperfResult, error) {
	r := IperfResult{Streams: streams}
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"-c", host, "-p", port, "-P", strconv.Itoa(streams), "-t", strconv.Itoa(secs), "-J"}
	recordCmd("iperf3", "iperf3 client", append([]string{"iperf3"}, args...))
	c0 := cpuOf(pid)
	out, err := runTool(time.Duration(secs)*time.Second+20*time.Second, "iperf3", args...)
	r.RelayCPU = cpuOf(pid) - c0
	var j iperfJSON
	if jerr := json.Unmarshal(out, &j); jerr != nil {
		if err == nil {
			err = jerr
		}
		return r, err
	}
	if j.Error != "" {
		return r, fmt.Errorf("iperf3: %s", j.Error)
	}
	r.Gbits = j.End.SumReceived.BitsPerSecond / 1e9
	r.Retransmits = j.End.SumSent.Retransmits
	r.Seconds, r.BytesRecv = j.End.SumReceived.Seconds, j.End.SumReceived.Bytes
	lo, hi := 0.0, 0.0
	for i, s := range j.End.Streams {
		v := s.Receiver.BitsPerSecond
		if i == 0 || v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	if hi > 0 {
		r.SlowFast = lo / hi
	}
	if pid != 0 && r.RelayCPU > 0 {
		r.PerCPU = r.BytesRecv / r.RelayCPU
	}
	if r.Gbits == 0 {
		return r, errors.New("iperf3: nothing received")
	}
	return r, nil
}
