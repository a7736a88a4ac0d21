package main

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/softnet-go/softnet/relay"
)

const statUsage = `Usage: spliced stat [--admin ADDR]

Prints the netstat -m report (mbuf and cluster zones, the memory limit) of a running
spliced, read from its admin endpoint's /debug/mbuf.
`

func cmdStat(args []string, stdout, stderr io.Writer) int {
	c := newCommand("stat", statUsage, stdout, stderr)
	admin := c.fs.String("admin", relay.DefaultAdmin, "the daemon's admin endpoint `ADDR`")
	timeout := 5 * time.Second
	c.fs.Var(durationFlag{&timeout}, "timeout", "give up after `DURATION`")
	if code := c.parse(args); code >= 0 {
		return code
	}
	client := http.Client{Timeout: timeout}
	resp, err := client.Get("http://" + *admin + "/debug/mbuf")
	if err != nil {
		fmt.Fprintf(stderr, "spliced stat: %v (is spliced running with --admin %s?)\n", err, *admin)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "spliced stat: %s: %s\n", resp.Request.URL, resp.Status)
		return 1
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		fmt.Fprintf(stderr, "spliced stat: %v\n", err)
		return 1
	}
	return 0
}
