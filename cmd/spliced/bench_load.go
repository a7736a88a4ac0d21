package main

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sink receives what the relay sends: TCP connections read to EOF, or datagrams on a
// socket per stream (the relay takes its targets in turn), one reader each.
type sink struct {
	addrs     []string
	bytes     atomic.Int64
	datagrams atomic.Int64
	closers   []func() error
	wg        sync.WaitGroup // readers
	conns     sync.WaitGroup // open TCP connections
}

func newSink(udp bool, streams int, cpu *cpuMeter) (*sink, error) {
	s := &sink{}
	if !udp {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		s.addrs = []string{ln.Addr().String()}
		s.closers = append(s.closers, ln.Close)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				s.conns.Add(1)
				go func() {
					cpu.enter()
					defer s.conns.Done()
					defer c.Close()
					buf := make([]byte, 256<<10)
					for {
						n, err := c.Read(buf)
						s.bytes.Add(int64(n))
						if err != nil {
							return
						}
					}
				}()
			}
		}()
		return s, nil
	}
	for range streams {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			s.close()
			return nil, err
		}
		pc.(*net.UDPConn).SetReadBuffer(4 << 20)
		s.addrs = append(s.addrs, pc.LocalAddr().String())
		s.closers = append(s.closers, pc.Close)
		s.wg.Add(1)
		go func() {
			cpu.enter()
			defer s.wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				s.bytes.Add(int64(n))
				s.datagrams.Add(1)
			}
		}()
	}
	return s, nil
}

// waitConns waits until every TCP connection has reached EOF, at most d.
func (s *sink) waitConns(d time.Duration) {
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func (s *sink) close() {
	for _, c := range s.closers {
		c()
	}
	s.wg.Wait()
	s.conns.Wait()
}

// source sends as fast as it can to addr on streams connections (or UDP sockets) until
// stop is closed; TCP streams then shut down their write side.
type source struct {
	wg   sync.WaitGroup
	errs chan error
}

func startSource(udp bool, addr string, streams, size int, stop <-chan struct{}, cpu *cpuMeter) (*source, error) {
	src := &source{errs: make(chan error, streams)}
	network := "tcp"
	if udp {
		network = "udp"
	}
	conns := make([]net.Conn, 0, streams)
	for range streams {
		c, err := net.DialTimeout(network, addr, 5*time.Second)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		src.wg.Add(1)
		go func() {
			cpu.enter()
			defer src.wg.Done()
			defer c.Close()
			buf := make([]byte, size)
			go func() { <-stop; c.SetWriteDeadline(time.Now()) }()
			for {
				select {
				case <-stop:
					if tc, ok := c.(*net.TCPConn); ok {
						tc.SetWriteDeadline(time.Time{})
						tc.CloseWrite()
					}
					return
				default:
				}
				if _, err := c.Write(buf); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOBUFS) {
						continue
					}
					src.errs <- err
					return
				}
			}
		}()
	}
	return src, nil
}

// wait waits for the source's streams and returns the first error one had.
func (s *source) wait() error {
	s.wg.Wait()
	select {
	case err := <-s.errs:
		return err
	default:
		return nil
	}
}
