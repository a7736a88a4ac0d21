package relay

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// LoadConfig reads a TOML configuration file (the format is in the package
// documentation), fills in defaults, validates it and checks it against this host
// (Config.Validate, Config.CheckHost). Every problem found is reported,
// each as a *ConfigError naming the file, line, key and value, joined with errors.Join;
// unknown keys are problems too.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(data, path)
}

// ParseConfig is LoadConfig for a file already read; name is used in error messages.
func ParseConfig(data []byte, name string) (*Config, error) {
	var raw rawConfig
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: %s", name, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	lines := keyLines(string(data))
	c := &config{}
	c.convert(&raw)
	c.unknownKeys(md)
	if err := errors.Join(c.cfg.Validate(), c.cfg.CheckHost()); err != nil {
		// A key that could not be converted was already reported.
		seen := map[lineKey]bool{}
		for _, e := range c.errs {
			seen[lineKey{e.Relay, e.Key}] = true
		}
		for _, e := range unjoin(err) {
			if !seen[lineKey{e.Relay, e.Key}] {
				c.errs = append(c.errs, e)
			}
		}
	}
	if len(c.errs) == 0 {
		return &c.cfg, nil
	}
	for _, e := range c.errs {
		e.File = name
		e.Line = lines[lineKey{e.Relay, e.Key}]
		if e.Line == 0 && e.Relay >= 0 {
			e.Line = lines[lineKey{e.Relay, ""}] // the [[relay]] header
		}
		if w, ok := c.written[lineKey{e.Relay, e.Key}]; ok && e.Key != "targets" && e.Value != "" {
			e.Value = w
		}
	}
	slices.SortStableFunc(c.errs, func(a, b *ConfigError) int { return a.Line - b.Line })
	errs := make([]error, len(c.errs))
	for i, e := range c.errs {
		errs[i] = e
	}
	return nil, errors.Join(errs...)
}

// unjoin flattens the errors Validate joined back into ConfigErrors.
func unjoin(err error) []*ConfigError {
	var out []*ConfigError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return []*ConfigError{ce}
	}
	return []*ConfigError{{Relay: -1, Err: err}}
}

// rawConfig is the file as decoded, every value kept as TOML gave it, so that conversion
// errors can name the value as written.
type rawConfig struct {
	Admin       rawValue   `toml:"admin"`
	AdminPublic rawValue   `toml:"admin_public"`
	AdminPprof  rawValue   `toml:"admin_pprof"`
	AdminToken  rawValue   `toml:"admin_token_file"`
	Workers     rawValue   `toml:"workers"`
	MemLimit    rawValue   `toml:"mem_limit"`
	MaxFlows    rawValue   `toml:"max_flows"`
	SockBuf     rawValue   `toml:"sockbuf"`
	Grace       rawValue   `toml:"grace"`
	LogFormat   rawValue   `toml:"log_format"`
	LogLevel    rawValue   `toml:"log_level"`
	AccessLog   rawValue   `toml:"access_log"`
	Relay       []rawRelay `toml:"relay"`
}

type rawRelay struct {
	Name           rawValue `toml:"name"`
	Protocol       rawValue `toml:"protocol"`
	Listen         rawValue `toml:"listen"`
	Targets        rawValue `toml:"targets"`
	Max            rawValue `toml:"max"`
	Idle           rawValue `toml:"idle"`
	Mode           rawValue `toml:"mode"`
	ProxyProtocol  rawValue `toml:"proxy_protocol"`
	ConnectTimeout rawValue `toml:"connect_timeout"`
	KeepAlive      rawValue `toml:"keepalive"`
	ReusePort      rawValue `toml:"reuse_port"`
	MaxPerSource   rawValue `toml:"max_flows_per_source"`
	RatePerSource  rawValue `toml:"new_flows_per_source"`
	AccessLog      rawValue `toml:"access_log"`
}

// rawValue holds one TOML value undecoded.
type rawValue struct {
	v   any
	set bool
}

// UnmarshalTOML implements toml.Unmarshaler.
func (r *rawValue) UnmarshalTOML(v any) error {
	r.v, r.set = v, true
	return nil
}

// String formats the value as TOML would write it.
func (r rawValue) String() string {
	switch v := r.v.(type) {
	case string:
		return strconv.Quote(v)
	case []any:
		s := make([]string, len(v))
		for i := range v {
			s[i] = rawValue{v: v[i]}.String()
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	return fmt.Sprint(r.v)
}

// config converts a rawConfig, collecting problems.
type config struct {
	cfg     Config
	errs    []*ConfigError
	written map[lineKey]string
	relay   int
	name    string
}

func (c *config) bad(key string, v rawValue, format string, args ...any) {
	c.errs = append(c.errs, &ConfigError{Relay: c.relay, Name: c.name, Key: key, Value: v.String(), Err: fmt.Errorf(format, args...)})
}

func (c *config) note(key string, v rawValue) bool {
	if v.set {
		c.written[lineKey{c.relay, key}] = v.String()
	}
	return v.set
}

func (c *config) str(key string, v rawValue, dst *string) {
	if !c.note(key, v) {
		return
	}
	if s, ok := v.v.(string); ok {
		*dst = s
		return
	}
	c.bad(key, v, "want a string")
}

func (c *config) boolean(key string, v rawValue, dst *bool) {
	if !c.note(key, v) {
		return
	}
	if b, ok := v.v.(bool); ok {
		*dst = b
		return
	}
	c.bad(key, v, "want true or false")
}

func (c *config) integer(key string, v rawValue, dst *int) {
	if !c.note(key, v) {
		return
	}
	if n, ok := v.v.(int64); ok && n == int64(int(n)) {
		*dst = int(n)
		return
	}
	c.bad(key, v, "want an integer")
}

func (c *config) size(key string, v rawValue, dst *int64) {
	if !c.note(key, v) {
		return
	}
	switch x := v.v.(type) {
	case int64:
		if x < 0 {
			c.bad(key, v, "must not be negative")
			return
		}
		*dst = x
	case string:
		n, err := ParseSize(x)
		if err != nil {
			c.bad(key, v, "%v", err)
			return
		}
		*dst = n
	default:
		c.bad(key, v, `want a size: bytes or a string with a unit such as "64MiB"`)
	}
}

func (c *config) duration(key string, v rawValue, dst *time.Duration) {
	if !c.note(key, v) {
		return
	}
	switch x := v.v.(type) {
	case int64:
		if x != 0 {
			c.bad(key, v, `want a duration with a unit, such as "30s", "5m" or "1h30m"`)
			return
		}
		*dst = 0
	case string:
		d, err := time.ParseDuration(x)
		if err != nil {
			c.bad(key, v, `want a duration such as "30s", "5m" or "1h30m"`)
			return
		}
		if d < 0 {
			c.bad(key, v, "must not be negative")
			return
		}
		*dst = d
	default:
		c.bad(key, v, `want a duration such as "30s", "5m" or "1h30m"`)
	}
}

func (c *config) convert(raw *rawConfig) {
	c.written = map[lineKey]string{}
	c.relay = -1
	cfg := &c.cfg
	c.str("admin", raw.Admin, &cfg.Admin)
	c.boolean("admin_public", raw.AdminPublic, &cfg.AdminPublic)
	c.boolean("admin_pprof", raw.AdminPprof, &cfg.AdminPprof)
	c.str("admin_token_file", raw.AdminToken, &cfg.AdminTokenFile)
	c.integer("workers", raw.Workers, &cfg.Workers)
	c.size("mem_limit", raw.MemLimit, &cfg.MemLimit)
	if c.note("max_flows", raw.MaxFlows) {
		if n, ok := raw.MaxFlows.v.(int64); ok {
			cfg.MaxFlows = n
		} else {
			c.bad("max_flows", raw.MaxFlows, "want an integer (0: derived from the descriptor limit)")
		}
	}
	cfg.SockBuf = DefaultSockBuf // a file without the key gets the default; 0 is autotuning
	c.size("sockbuf", raw.SockBuf, &cfg.SockBuf)
	c.duration("grace", raw.Grace, &cfg.Grace)
	c.str("log_format", raw.LogFormat, &cfg.LogFormat)
	c.str("log_level", raw.LogLevel, &cfg.LogLevel)
	cfg.AccessLog = true // a file without the key logs every flow
	c.boolean("access_log", raw.AccessLog, &cfg.AccessLog)
	for i := range raw.Relay {
		rr := &raw.Relay[i]
		c.relay, c.name = i, ""
		r := RelayConfig{Protocol: "tcp", Mode: ModeAuto}
		c.str("name", rr.Name, &r.Name)
		c.name = r.Name
		c.str("protocol", rr.Protocol, &r.Protocol)
		c.str("listen", rr.Listen, &r.Listen)
		if c.note("targets", rr.Targets) {
			switch x := rr.Targets.v.(type) {
			case string:
				r.Targets = []string{x}
			case []any:
				for _, t := range x {
					s, ok := t.(string)
					if !ok {
						c.bad("targets", rawValue{v: t}, `want "host:port" strings`)
						continue
					}
					r.Targets = append(r.Targets, s)
				}
			default:
				c.bad("targets", rr.Targets, `want a list of "host:port" strings`)
			}
		}
		c.size("max", rr.Max, &r.Max)
		c.duration("idle", rr.Idle, &r.Idle)
		if rr.Idle.set && r.Idle == 0 {
			r.Idle = Off // written 0: none, where unset is the default
		}
		c.duration("keepalive", rr.KeepAlive, &r.KeepAlive)
		if rr.KeepAlive.set && r.KeepAlive == 0 {
			r.KeepAlive = Off
		}
		c.duration("connect_timeout", rr.ConnectTimeout, &r.ConnectTimeout)
		c.boolean("reuse_port", rr.ReusePort, &r.ReusePort)
		if rr.AccessLog.set {
			var on bool
			c.boolean("access_log", rr.AccessLog, &on)
			r.AccessLog = &on
		}
		c.integer("max_flows_per_source", rr.MaxPerSource, &r.MaxFlowsPerSource)
		if rr.MaxPerSource.set && r.MaxFlowsPerSource == 0 {
			r.MaxFlowsPerSource = -1 // written 0: no cap, where unset is the default
		}
		if c.note("new_flows_per_source", rr.RatePerSource) {
			var err error
			switch x := rr.RatePerSource.v.(type) {
			case string:
				r.NewFlowsPerSource, err = ParseRate(x)
			case int64:
				if x != 0 {
					err = errors.New(`want a rate such as "100/s", or 0 for none`)
				}
			default:
				err = errors.New(`want a rate such as "100/s"`)
			}
			if err != nil {
				c.bad("new_flows_per_source", rr.RatePerSource, "%s", err.Error())
			}
		}
		var s string
		if c.str("mode", rr.Mode, &s); rr.Mode.set {
			m, err := ParseMode(s)
			if err != nil {
				c.bad("mode", rr.Mode, "want auto, user or kernel")
			}
			r.Mode = m
		}
		s = ""
		if c.str("proxy_protocol", rr.ProxyProtocol, &s); rr.ProxyProtocol.set {
			v, err := ParseProxyVersion(s)
			if err != nil {
				c.bad("proxy_protocol", rr.ProxyProtocol, `want "v1" or "v2", or "none"`)
			}
			r.ProxyProtocol = v
		}
		if r.Name == "" && r.Listen != "" {
			r.Name = r.Protocol + "-" + r.Listen
		}
		cfg.Relays = append(cfg.Relays, r)
	}
}

// unknownKeys reports every key the file has and Config does not know, once per subtree.
func (c *config) unknownKeys(md toml.MetaData) {
	undecoded := map[string]bool{}
	for _, k := range md.Undecoded() {
		undecoded[k.String()] = true
	}
	relay := -1
	var reported []string
	for _, k := range md.Keys() {
		if len(k) == 1 && k[0] == "relay" {
			relay++
			continue
		}
		if !undecoded[k.String()] {
			continue
		}
		ks := k.String()
		covered := false
		for _, p := range reported {
			if strings.HasPrefix(ks, p+".") {
				covered = true
			}
		}
		if covered {
			continue
		}
		reported = append(reported, ks)
		e := &ConfigError{Relay: -1, Key: ks, Err: errors.New("unknown key")}
		if len(k) > 1 && k[0] == "relay" && relay >= 0 {
			e.Relay, e.Key = relay, strings.Join(k[1:], ".")
			if relay < len(c.cfg.Relays) {
				e.Name = c.cfg.Relays[relay].Name
			}
		}
		e.Err = fmt.Errorf("unknown key (known: %s)", knownKeys(e.Relay >= 0))
		c.errs = append(c.errs, e)
	}
}

func knownKeys(relay bool) string {
	if relay {
		return "name, protocol, listen, targets, max, idle, mode, proxy_protocol, connect_timeout, keepalive, reuse_port, max_flows_per_source, new_flows_per_source, access_log"
	}
	return "admin, admin_public, admin_pprof, admin_token_file, workers, mem_limit, max_flows, sockbuf, grace, log_format, log_level, access_log, [[relay]]"
}
