// Command spliced is a TCP and UDP relay daemon built on softnet's socket splicing: the
// relayd of OpenBSD, in Go user space.
//
// Usage:
//
//	spliced run --listen ADDR --to ADDR [--udp] [--max BYTES] [--idle DURATION] [--mode auto|user|kernel] ...
//	spliced run --config FILE
//	spliced bench [--streams N] [--time DURATION] [--mode auto|user|kernel|iocopy|copy] [--udp] [--json]
//	spliced stat [--admin ADDR]
//	spliced check --config FILE
//	spliced version
//
// Every subcommand takes --help. A bad flag or value exits with status 2 and a message
// naming it.
package main

import (
	"fmt"
	"io"
	"os"
)

const mainUsage = `spliced: a TCP and UDP relay on socket splicing

Usage:
  spliced run --listen ADDR --to ADDR [flags]   relay one address to one or more targets
  spliced run --config FILE [flags]             run the relays of a TOML file
  spliced bench [flags]                          source → relay → sink on loopback, measured
  spliced stat [--admin ADDR]                    print the netstat -m report of a running daemon
  spliced check --config FILE                    check a configuration file without running it
  spliced version                                print the version

Run "spliced COMMAND --help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit status: 0, 1 for a failure while
// running, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "bench":
		return cmdBench(args[1:], stdout, stderr)
	case "stat":
		return cmdStat(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		return cmdVersion(args[1:], stdout, stderr)
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, mainUsage)
		return 0
	}
	fmt.Fprintf(stderr, "spliced: unknown command %q\n\n%s", args[0], mainUsage)
	return 2
}
