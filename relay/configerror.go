package relay

import (
	"fmt"
	"strings"
)

// A ConfigError is one problem with a configuration: where it is, which key, which value
// and what is wrong with it. LoadConfig and Config.Validate return them, several joined
// with errors.Join when there are several.
type ConfigError struct {
	File  string // the file, if the configuration came from one
	Line  int    // 1-based line of the key in File; 0 if unknown
	Relay int    // index of the relay in Config.Relays, or -1 for a global setting
	Name  string // the relay's name, if it has one
	Key   string // the key as written in the file ("listen", "max", "mem_limit")
	Value string // the offending value as written, or "" if it is missing
	Err   error  // what is wrong
}

// Error formats the problem as "FILE:LINE: relay "NAME": KEY = VALUE: ERR".
func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Relay >= 0 {
		if e.Name != "" {
			fmt.Fprintf(&b, "relay %q: ", e.Name)
		} else {
			fmt.Fprintf(&b, "relay #%d: ", e.Relay+1)
		}
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		if e.Value != "" {
			b.WriteString(" = ")
			b.WriteString(e.Value)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *ConfigError) Unwrap() error { return e.Err }
