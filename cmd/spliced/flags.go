package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/softnet-go/softnet/relay"
)

// command is one subcommand's flag set, with GNU-style long flags in its help and errors.
type command struct {
	name   string // "run"
	usage  string // the lines above the flags
	fs     *flag.FlagSet
	stdout io.Writer
	stderr io.Writer
}

func newCommand(name, usage string, stdout, stderr io.Writer) *command {
	fs := flag.NewFlagSet("spliced "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &command{name: name, usage: usage, fs: fs, stdout: stdout, stderr: stderr}
}

var flagDash = regexp.MustCompile(`(flag|argument:|for) -([a-z])`)

// parse parses args. It returns -1 to go on, or the exit status: 0 after --help, 2 after
// a bad flag or value (with a message naming it).
func (c *command) parse(args []string) int {
	err := c.fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.printUsage(c.stdout)
		return 0
	}
	if err == nil && c.fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q (flags are --name VALUE)", c.fs.Arg(0))
	}
	if err != nil {
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = "unknown flag --" + strings.TrimPrefix(name, "-")
		}
		return c.fail(errors.New(flagDash.ReplaceAllString(msg, "$1 --$2")))
	}
	return -1
}

// fail prints a usage error and returns 2.
func (c *command) fail(err error) int {
	fmt.Fprintf(c.stderr, "spliced %s: %v\nRun \"spliced %s --help\" for usage.\n", c.name, err, c.name)
	return 2
}

// set reports whether a flag was given on the command line.
func (c *command) set(name string) bool {
	found := false
	c.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

func (c *command) printUsage(w io.Writer) {
	fmt.Fprint(w, c.usage)
	fmt.Fprintln(w, "\nFlags:")
	c.fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if _, ok := f.Value.(interface{ IsBoolFlag() bool }); ok {
			arg = ""
		}
		line := "  --" + f.Name
		if arg != "" {
			line += " " + strings.ToUpper(arg)
		}
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" && def != "[]" {
			usage += fmt.Sprintf(" (default %s)", def)
		}
		fmt.Fprintf(w, "%-30s %s\n", line, usage)
	})
}

// sizeFlag is a byte count flag that takes 64MiB-style suffixes.
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil || *f.n == 0 {
		return "0"
	}
	return relay.FormatSize(*f.n)
}

func (f sizeFlag) Set(s string) error {
	n, err := relay.ParseSize(s)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}

// durationFlag is a non-negative Go duration flag with an error that says what it wants.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return "0s"
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 30s, 5m or 1h30m")
	}
	if d < 0 {
		return fmt.Errorf("must not be negative")
	}
	*f.d = d
	return nil
}

// listFlag collects a flag given several times, or once with commas.
type listFlag struct{ l *[]string }

func (f listFlag) String() string {
	if f.l == nil {
		return ""
	}
	return strings.Join(*f.l, ",")
}

func (f listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*f.l = append(*f.l, p)
		}
	}
	return nil
}

// choiceFlag is a string flag limited to some values.
type choiceFlag struct {
	s      *string
	values []string
}

func (f choiceFlag) String() string {
	if f.s == nil {
		return ""
	}
	return *f.s
}

func (f choiceFlag) Set(s string) error {
	for _, v := range f.values {
		if s == v {
			*f.s = s
			return nil
		}
	}
	return fmt.Errorf("want %s", strings.Join(f.values, ", "))
}
