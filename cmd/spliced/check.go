package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/softnet-go/softnet/relay"
)

const checkUsage = `Usage:
  spliced check --config FILE

Checks a configuration file as spliced run --config would take it, without running it:
every key, value and relay, names that resolve, loops, the memory limit's floor. Prints
"ok" and the relays, and exits 0; or prints every problem with its file, line, key and
value, and exits 2. A systemd unit runs it before sending SIGHUP, so that systemctl
reload fails, and says why, when the new file would be refused.
`

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	c := newCommand("check", checkUsage, stdout, stderr)
	var file string
	c.fs.StringVar(&file, "config", "", "the TOML `FILE` to check")
	if code := c.parse(args); code >= 0 {
		return code
	}
	if file == "" {
		return c.fail(errors.New("give --config FILE"))
	}
	cfg, err := relay.LoadConfig(file)
	if err == nil {
		err = checkMemLimit(cfg, file)
	}
	if err != nil {
		fmt.Fprintf(stderr, "spliced check: %s: refused:\n%v\n", file, err)
		return 2
	}
	fmt.Fprintf(stdout, "ok: %s: %d relays\n", file, len(cfg.Relays))
	for _, r := range cfg.Relays {
		fmt.Fprintf(stdout, "  %s: %s %s -> %v\n", r.Name, r.Protocol, r.Listen, r.Targets)
	}
	return 0
}
