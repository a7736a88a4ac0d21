package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// ConfigFile is one file of results/configs/: a peer's configuration file, or the command
// lines the harness ran for one tool (one line per variant, the last run's ports).
type ConfigFile struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

var (
	configsMu sync.Mutex
	// configFiles maps a file name to its text (configuration files), or to its
	// command lines by variant (cmdLines).
	configFiles = map[string]string{}
	cmdLines    = map[string]map[string]string{}
	cmdOrder    = map[string][]string{}
)

// recordFile keeps a configuration file the harness wrote for a peer, to publish it.
func recordFile(name, text string) {
	configsMu.Lock()
	defer configsMu.Unlock()
	configFiles[name] = text
}

// recordCmd keeps the command line of a tool's variant (the last one run).
func recordCmd(tool, variant string, args []string) {
	if tool == "" {
		return
	}
	configsMu.Lock()
	defer configsMu.Unlock()
	name := tool + ".txt"
	if cmdLines[name] == nil {
		cmdLines[name] = map[string]string{}
	}
	if _, ok := cmdLines[name][variant]; !ok {
		cmdOrder[name] = append(cmdOrder[name], variant)
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	if len(q) > 0 {
		q[0] = filepath.Base(args[0])
	}
	cmdLines[name][variant] = strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// configs returns every recorded file, sorted by name.
func configs() []ConfigFile {
	configsMu.Lock()
	defer configsMu.Unlock()
	var out []ConfigFile
	for n, t := range configFiles {
		out = append(out, ConfigFile{n, t})
	}
	for n, m := range cmdLines {
		var b strings.Builder
		for _, v := range cmdOrder[n] {
			b.WriteString("# " + v + "\n" + m[v] + "\n")
		}
		out = append(out, ConfigFile{n, b.String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// writeConfigs writes every recorded file into dir/configs.
func writeConfigs(dir string, cs []ConfigFile) error {
	d := filepath.Join(dir, "configs")
	if err := os.RemoveAll(d); err != nil {
		return err
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	for _, c := range cs {
		if err := os.WriteFile(filepath.Join(d, c.Name), []byte(c.Text), 0o644); err != nil {
			return err
		}
	}
	return nil
}
