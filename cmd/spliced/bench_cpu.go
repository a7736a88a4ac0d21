package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cpuMeter measures the CPU time of the source and the sink of a benchmark, so that the
// rest of the process's CPU time can be put down to the relay. Each goroutine of the
// source and the sink locks itself to its own OS thread (runtime.LockOSThread), so the
// thread runs nothing else, and the meter reads each thread's time on the CPU from
// /proc/self/task/TID/schedstat, in nanoseconds.
type cpuMeter struct {
	mu   sync.Mutex
	last map[int]time.Duration // by thread id: the time last read
}

func newCPUMeter() *cpuMeter { return &cpuMeter{last: map[int]time.Duration{}} }

// enter locks the calling goroutine to its thread and counts the thread as an
// endpoint's. The goroutine must not unlock: its thread ends with it.
func (m *cpuMeter) enter() {
	runtime.LockOSThread()
	tid := syscall.Gettid()
	m.mu.Lock()
	m.last[tid] = threadCPU(tid, 0)
	m.mu.Unlock()
}

// total returns the CPU time of every endpoint thread so far; a thread that has ended
// counts with the time last read.
func (m *cpuMeter) total() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var t time.Duration
	for tid, last := range m.last {
		cur := threadCPU(tid, last)
		m.last[tid] = cur
		t += cur
	}
	return t
}

// threadCPU reads a thread's time on the CPU, or returns last if it cannot.
func threadCPU(tid int, last time.Duration) time.Duration {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/schedstat")
	if err != nil {
		return last
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return last
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || time.Duration(ns) < last {
		return last
	}
	return time.Duration(ns)
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
