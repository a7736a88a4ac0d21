package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// msgSize is the request and response size of the small-message scenarios.
const msgSize = 64

// muxServer is the target of the small-message scenarios, in the harness's process
// (goroutines outside the relay): each connection's first byte picks what it is, 'e' an
// echo server (what it reads it writes back) or 's' a sink (what it reads it counts and
// drops), so that the fairness scenario's interactive and bulk connections can share one
// relay with a single target.
type muxServer struct {
	ln        net.Listener
	sinkBytes atomic.Int64
	accepted  atomic.Int64
	mu        sync.Mutex
	held      map[net.Conn]struct{}
}

func newMuxServer() *muxServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s := &muxServer{ln: ln, held: map[net.Conn]struct{}{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(time.Millisecond) // EMFILE and the like
				continue
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.held[c] = struct{}{}
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	return s
}

func (s *muxServer) addr() string { return s.ln.Addr().String() }

func (s *muxServer) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.held, c)
		s.mu.Unlock()
	}()
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if n == 0 || err != nil && n == 0 {
		return
	}
	switch buf[0] {
	case 'e':
		// The same Read/Write loop as gorelay's copy mode, a command of its own.
		if n > 1 {
			if _, err := c.Write(buf[1:n]); err != nil {
				return
			}
		}
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	case 's':
		s.sinkBytes.Add(int64(n - 1))
		drain(c, &s.sinkBytes)
	}
}

// closeConns closes every connection the server still holds (at the end of a run, so
// that no relay keeps flows of an earlier run).
func (s *muxServer) closeConns() {
	s.mu.Lock()
	for c := range s.held {
		c.Close()
	}
	s.mu.Unlock()
}

func (s *muxServer) close() { s.ln.Close(); s.closeConns() }

// window is a measured interval of a load that runs warm + dur and stops by itself.
type window struct {
	t0, t1 time.Time // measured from t0 to t1
	stop   time.Time // the load's end (t1)
}

func newWindow(warm, dur time.Duration) window {
	now := time.Now()
	return window{t0: now.Add(warm), t1: now.Add(warm + dur), stop: now.Add(warm + dur)}
}

// rrLoad is a closed-loop request/response load: conns connections each send a 64-byte
// request and wait for its 64-byte echo before the next.
type rrLoad struct {
	lat  []time.Duration // round trips that ended inside the window
	reqs int64           // requests that ended inside the window
	errs atomic.Value
}

// runRR runs conns closed-loop request/response connections through addr over w; each
// connection's round trips are timed (wall clock, from before the write to after the
// whole echo has been read).
func runRR(addr string, conns int, w window) (*rrLoad, error) {
	cs, err := dialAll(addr, conns)
	if err != nil {
		return nil, err
	}
	defer closeAll(cs)
	l := &rrLoad{}
	var mu sync.Mutex
	wait := each(cs, func(c net.Conn) {
		lat := make([]time.Duration, 0, 1<<14)
		var n int64
		defer func() {
			mu.Lock()
			l.lat = append(l.lat, lat...)
			l.reqs += n
			mu.Unlock()
		}()
		_ = c.SetDeadline(w.stop.Add(2 * time.Second))
		req := make([]byte, msgSize+1)
		req[0] = 'e'
		resp := make([]byte, msgSize)
		if err := echo(c, req, resp); err != nil {
			l.errs.Store(err)
			return
		}
		req = req[1:]
		for {
			t := time.Now()
			if !t.Before(w.stop) {
				return
			}
			if err := echo(c, req, resp); err != nil {
				l.errs.Store(err)
				return
			}
			e := time.Now()
			if !t.Before(w.t0) && !e.After(w.t1) {
				lat = append(lat, e.Sub(t))
				n++
			}
		}
	})
	wait()
	if e, ok := l.errs.Load().(error); ok {
		return l, e
	}
	if l.reqs == 0 {
		return l, errors.New("no request completed")
	}
	return l, nil
}

// echo writes req to c and reads the echo into resp (the whole of it).
func echo(c net.Conn, req, resp []byte) error {
	if _, err := c.Write(req); err != nil {
		return err
	}
	_, err := io.ReadFull(c, resp)
	return err
}

// percentile returns the p-th percentile (0 < p < 1) of ds, which it sorts.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := int(p * float64(len(ds)))
	return ds[min(i, len(ds)-1)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// cpuWindow samples a process's CPU at a window's start and end while a load runs.
func cpuWindow(pid int, w window) chan float64 {
	ch := make(chan float64, 1)
	go func() {
		time.Sleep(time.Until(w.t0))
		c0 := cpuOf(pid)
		time.Sleep(time.Until(w.t1))
		ch <- max(0, cpuOf(pid)-c0)
	}()
	return ch
}

// RRResult is one relay in a request/response scenario.
type RRResult struct {
	Row
	Conns   int     `json:"conns"`
	Seconds float64 `json:"seconds"`
	Reqs    int64   `json:"requests"`
	PerSec  float64 `json:"requests_s"`
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
	// AddedP50us is this row's p50 less the direct path's (the latency the relay adds).
	AddedP50us float64 `json:"added_p50_us"`
	RelayCPU   float64 `json:"relay_cpu_s"`
	// CPUPerM is relay CPU-seconds per million requests.
	CPUPerM float64   `json:"relay_cpu_s_per_million"`
	Samples []float64 `json:"samples,omitempty"` // every round's key figure (p50 or requests/s)
	Err     string    `json:"error,omitempty"`
}

func measureRR(rp *relayProc, conns int, warm, dur time.Duration) (RRResult, error) {
	r := RRResult{Conns: conns}
	w := newWindow(warm, dur)
	cpu := cpuWindow(rp.pid(), w)
	l, err := runRR(rp.listen, conns, w)
	if err != nil {
		return r, err
	}
	r.RelayCPU = <-cpu
	r.Seconds = w.t1.Sub(w.t0).Seconds()
	r.Reqs = l.reqs
	r.PerSec = float64(l.reqs) / r.Seconds
	r.P50us, r.P99us = us(percentile(l.lat, 0.5)), us(percentile(l.lat, 0.99))
	if rp.pid() != 0 && l.reqs > 0 {
		r.CPUPerM = r.RelayCPU / float64(l.reqs) * 1e6
	}
	return r, nil
}

// ChurnResult is one relay under connection churn.
type ChurnResult struct {
	Row
	Clients int     `json:"clients"`
	Seconds float64 `json:"seconds"`
	Conns   int64   `json:"conns"`
	PerSec  float64 `json:"conns_s"`
	// Failed counts connections that failed (dial, write or read errors) in the window.
	Failed   int64     `json:"failed"`
	RelayCPU float64   `json:"relay_cpu_s"`
	CPUPerK  float64   `json:"relay_cpu_s_per_1000_conns"`
	Samples  []float64 `json:"samples,omitempty"`
	Err      string    `json:"error,omitempty"`
}

// measureChurn runs clients goroutines that each, in a loop, connect through the relay,
// send a 64-byte request, read its echo and close (a normal close: FIN, no SO_LINGER).
// The run lasts warm + dur, so at most a few tens of thousands of connections enter
// TIME_WAIT on loopback, within the ephemeral port range (and Linux's tcp_tw_reuse = 2
// reuses loopback TIME_WAIT ports for new connections).
func measureChurn(rp *relayProc, clients int, warm, dur time.Duration) (ChurnResult, error) {
	r := ChurnResult{Clients: clients}
	w := newWindow(warm, dur)
	cpu := cpuWindow(rp.pid(), w)
	var done, failed atomic.Int64
	var lastErr atomic.Value
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := make([]byte, msgSize+1)
			req[0] = 'e'
			resp := make([]byte, msgSize)
			d := net.Dialer{Timeout: time.Second}
			for {
				t := time.Now()
				if !t.Before(w.stop) {
					return
				}
				in := !t.Before(w.t0)
				err := func() error {
					ctx, cancel := context.WithDeadline(context.Background(), w.stop.Add(time.Second))
					defer cancel()
					c, err := d.DialContext(ctx, "tcp", rp.listen)
					if err != nil {
						return err
					}
					defer c.Close()
					_ = c.SetDeadline(w.stop.Add(time.Second))
					return echo(c, req, resp)
				}()
				e := time.Now()
				if err != nil {
					if in {
						failed.Add(1)
						lastErr.Store(err)
					}
					time.Sleep(time.Millisecond)
					continue
				}
				if in && !e.After(w.t1) {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	r.RelayCPU = <-cpu
	r.Seconds = w.t1.Sub(w.t0).Seconds()
	r.Conns, r.Failed = done.Load(), failed.Load()
	r.PerSec = float64(r.Conns) / r.Seconds
	if rp.pid() != 0 && r.Conns > 0 {
		r.CPUPerK = r.RelayCPU / float64(r.Conns) * 1e3
	}
	if r.Conns == 0 {
		err, _ := lastErr.Load().(error)
		return r, fmt.Errorf("no connection completed (%v)", err)
	}
	return r, nil
}

// FairResult is one relay carrying an interactive connection beside bulk streams.
type FairResult struct {
	Row
	Bulk      int     `json:"bulk_streams"`
	Seconds   float64 `json:"seconds"`
	InterP50  float64 `json:"interactive_p50_us"`
	InterP99  float64 `json:"interactive_p99_us"`
	InterRate float64 `json:"interactive_requests_s"`
	BulkGbit  float64 `json:"bulk_gbit_s"`
	// BulkOnlyGbit is the same relay's bulk streams alone, and BulkRatio BulkGbit over it.
	BulkOnlyGbit float64   `json:"bulk_only_gbit_s"`
	BulkRatio    float64   `json:"bulk_ratio"`
	RelayCPU     float64   `json:"relay_cpu_s"`
	Samples      []float64 `json:"samples,omitempty"`
	Err          string    `json:"error,omitempty"`
}

// runBulk streams 128 KiB writes from n connections through addr to the mux server's
// sink until w.stop, and returns the sink's bytes over the window.
func runBulk(srv *muxServer, addr string, n int, w window) (int64, error) {
	cs, err := dialAll(addr, n)
	if err != nil {
		return 0, err
	}
	defer closeAll(cs)
	wait := stream(cs, 's', w.stop, func() bool { return time.Now().Before(w.stop) },
		func(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) })
	time.Sleep(time.Until(w.t0))
	b0 := srv.sinkBytes.Load()
	time.Sleep(time.Until(w.t1))
	b1 := srv.sinkBytes.Load()
	if err := wait(); err != nil {
		return b1 - b0, err
	}
	if b1 == b0 {
		return 0, errors.New("no bytes reached the sink")
	}
	return b1 - b0, nil
}

// measureFair runs bulk streams and one interactive request/response connection through
// the same relay over one window, then the bulk streams alone over another.
func measureFair(srv *muxServer, rp *relayProc, bulk int, warm, dur time.Duration) (FairResult, error) {
	r := FairResult{Bulk: bulk}
	w := newWindow(warm, dur)
	cpu := cpuWindow(rp.pid(), w)
	var rr *rrLoad
	var rrErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// the interactive connection starts once the bulk streams have filled the pipes
		time.Sleep(warm / 2)
		rr, rrErr = runRR(rp.listen, 1, w)
	}()
	b, err := runBulk(srv, rp.listen, bulk, w)
	wg.Wait()
	r.RelayCPU = <-cpu
	srv.closeConns()
	if err != nil {
		return r, fmt.Errorf("bulk: %w", err)
	}
	if rrErr != nil {
		return r, fmt.Errorf("interactive: %w", rrErr)
	}
	r.Seconds = w.t1.Sub(w.t0).Seconds()
	r.BulkGbit = float64(b) * 8 / r.Seconds / 1e9
	r.InterP50, r.InterP99 = us(percentile(rr.lat, 0.5)), us(percentile(rr.lat, 0.99))
	r.InterRate = float64(rr.reqs) / r.Seconds
	time.Sleep(100 * time.Millisecond)
	w2 := newWindow(warm, dur)
	b2, err := runBulk(srv, rp.listen, bulk, w2)
	srv.closeConns()
	if err != nil {
		return r, fmt.Errorf("bulk only: %w", err)
	}
	r.BulkOnlyGbit = float64(b2) * 8 / w2.t1.Sub(w2.t0).Seconds() / 1e9
	if r.BulkOnlyGbit > 0 {
		r.BulkRatio = r.BulkGbit / r.BulkOnlyGbit
	}
	return r, nil
}
