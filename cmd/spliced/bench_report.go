package main

import (
	"fmt"
	"io"
)

func printInterval(w io.Writer, udp bool, iv benchInterval) {
	secs := iv.End - iv.Start
	if udp {
		fmt.Fprintf(w, "[SUM] %6.2f-%-6.2f sec  %9d      %9.0f dgram/s  %s  %5.2f s\n",
			iv.Start, iv.End, iv.Datagrams, float64(iv.Datagrams)/secs, bitrate(iv.Bytes, secs), iv.RelayCPUSeconds)
		return
	}
	fmt.Fprintf(w, "[SUM] %6.2f-%-6.2f sec  %s  %s  %5.2f s\n",
		iv.Start, iv.End, transfer(iv.Bytes), bitrate(iv.Bytes, secs), iv.RelayCPUSeconds)
}

func printSummary(w io.Writer, r *benchResult) {
	fmt.Fprintf(w, "- - - - - - - - - - - - - - - - - - - - - - - - -\n")
	if r.Protocol == "udp" {
		fmt.Fprintf(w, "[SUM] %6.2f-%-6.2f sec  %9d      %9.0f dgram/s  %s  %5.2f s   received\n",
			0.0, r.Seconds, r.Datagrams, r.DatagramsPerSec, bitrate(r.Bytes, r.Seconds), r.RelayCPUSeconds)
	} else {
		fmt.Fprintf(w, "[SUM] %6.2f-%-6.2f sec  %s  %s  %5.2f s   received\n",
			0.0, r.Seconds, transfer(r.Bytes), bitrate(r.Bytes, r.Seconds), r.RelayCPUSeconds)
	}
	fmt.Fprintf(w, "\nmode %s, %s, %d stream(s): %.2f Gbit/s", r.Mode, r.Protocol, r.Streams, r.Gbps)
	if r.Protocol == "udp" {
		fmt.Fprintf(w, ", %.0f datagrams/s of %d bytes", r.DatagramsPerSec, r.DatagramSize)
	}
	fmt.Fprintf(w, "\nCPU: process %.2f s = relay %.2f s + source and sink %.2f s (their threads, measured)\n",
		r.ProcessCPUSeconds, r.RelayCPUSeconds, r.EndpointCPUSeconds)
	if r.RelayCPUSeconds > 0 {
		if r.Protocol == "udp" {
			fmt.Fprintf(w, "relay efficiency: %.0f datagrams per relay CPU-second\n", float64(r.Datagrams)/r.RelayCPUSeconds)
		} else {
			fmt.Fprintf(w, "relay efficiency: %.2f GB per relay CPU-second\n", r.BytesPerRelayCPU/1e9)
		}
	}
	if r.Memory != nil {
		fmt.Fprintf(w, "\n%s", r.Memory.Report)
	}
}

// The report uses SI units throughout: a GB is 10^9 bytes, a Gbit 10^9 bits, as iperf3's
// bitrates and the summary's "GB per relay CPU-second" do; no binary (KiB, GiB) figure
// appears beside them.

// transfer formats a byte count in SI units (GB = 10^9 bytes, MB = 10^6, KB = 10^3).
func transfer(b int64) string {
	f := float64(b)
	switch {
	case f >= 1e9:
		return fmt.Sprintf("%6.2f GB", f/1e9)
	case f >= 1e6:
		return fmt.Sprintf("%6.1f MB", f/1e6)
	}
	return fmt.Sprintf("%6.1f KB", f/1e3)
}

// bitrate formats a rate in SI units (Gbits/sec = 10^9 bits per second), as iperf3 does.
func bitrate(b int64, secs float64) string {
	r := float64(b) * 8 / secs
	switch {
	case r >= 1e9:
		return fmt.Sprintf("%6.2f Gbits/sec", r/1e9)
	case r >= 1e6:
		return fmt.Sprintf("%6.1f Mbits/sec", r/1e6)
	}
	return fmt.Sprintf("%6.1f Kbits/sec", r/1e3)
}
