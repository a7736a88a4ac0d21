package relay

import (
	"regexp"
	"strings"
)

// lineKey names a key of the file: in relay Relay (-1 for the top level), key Key ("" for
// the [[relay]] header itself).
type lineKey struct {
	Relay int
	Key   string
}

var (
	relayHeader = regexp.MustCompile(`^\s*\[\[\s*relay\s*\]\]`)
	otherHeader = regexp.MustCompile(`^\s*\[+\s*([A-Za-z0-9_-]+|"[^"]*")`)
	keyLine     = regexp.MustCompile(`^\s*([A-Za-z0-9_-]+|"[^"]*"|'[^']*')\s*[.=]`)
)

// keyLines finds the line of every key of a configuration file, by section: the TOML
// decoder keeps positions only for the last of several [[relay]] tables. It reads the
// usual layout, one key per line; a key it cannot place gets no line (0).
func keyLines(text string) map[lineKey]int {
	lines := map[lineKey]int{}
	relay, inRelay := -1, false
	inMultiline := ""
	for i, l := range strings.Split(text, "\n") {
		n := i + 1
		if inMultiline != "" {
			if strings.Count(l, inMultiline)%2 == 1 {
				inMultiline = ""
			}
			continue
		}
		switch {
		case relayHeader.MatchString(l):
			relay++
			inRelay = true
			lines[lineKey{relay, ""}] = n
			continue
		case otherHeader.MatchString(l) && !keyLine.MatchString(l):
			inRelay = false
			k := strings.Trim(otherHeader.FindStringSubmatch(l)[1], `"`)
			setLine(lines, lineKey{-1, k}, n)
			continue
		}
		m := keyLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		k := strings.Trim(m[1], `"'`)
		if inRelay {
			setLine(lines, lineKey{relay, k}, n)
		} else {
			setLine(lines, lineKey{-1, k}, n)
		}
		for _, q := range []string{`"""`, `'''`} {
			if strings.Count(l, q)%2 == 1 {
				inMultiline = q
			}
		}
	}
	return lines
}

func setLine(lines map[lineKey]int, k lineKey, n int) {
	if _, ok := lines[k]; !ok {
		lines[k] = n
	}
}
