package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/softnet-go/softnet/relay"
)

const runUsage = `Usage:
  spliced run --listen ADDR --to ADDR [--to ADDR...] [flags]
  spliced run --config FILE [flags]

Relays TCP connections (or UDP datagrams with --udp) from ADDR to the targets, taken in
turn, splicing each direction of each flow. --max and --idle apply to each direction, as
two OpenBSD splices would. With --config, the relays come from a TOML file (see
contrib/spliced.toml); the global flags given override the file.

Signals: SIGINT and SIGTERM stop accepting and let open flows finish for --grace, then
reset those still open and exit 0; a second SIGINT or SIGTERM resets them at once.
SIGHUP reloads --config, keeping the open flows.
`

// runFlags are the flags of spliced run.
type runFlags struct {
	config, listen, admin string
	adminTokenFile        string
	adminToken            []byte // read from the token file by runConfig
	to                    []string
	udp, adminPublic      bool
	accessLog             bool
	reusePort             bool
	adminPprof            bool
	max, memLimit         int64
	sockbuf               int64
	idle, grace           time.Duration
	connectTimeout        time.Duration
	keepalive             time.Duration
	mode, proxy           string
	workers               int
	maxFlows              int64
	maxPerSource          int
	ratePerSource         string
	logFormat, logLevel   string
}

// relayFlags are the flags that describe the one relay of a command line; they cannot
// be mixed with --config.
var relayFlags = []string{"listen", "to", "udp", "max", "idle", "keepalive", "mode", "proxy-protocol", "connect-timeout",
	"max-flows-per-source", "new-flows-per-source", "reuse-port"}

// flagOf maps a configuration key to the flag that sets it, for error messages.
var flagOf = map[string]string{
	"listen": "--listen", "targets": "--to", "max": "--max", "idle": "--idle", "mode": "--mode",
	"proxy_protocol": "--proxy-protocol", "connect_timeout": "--connect-timeout", "keepalive": "--keepalive", "admin": "--admin", "workers": "--workers",
	"mem_limit": "--mem-limit", "sockbuf": "--sockbuf", "grace": "--grace", "log_format": "--log-format", "protocol": "--udp",
	"admin_token_file": "--admin-token-file", "max_flows": "--max-flows", "max_flows_per_source": "--max-flows-per-source",
	"new_flows_per_source": "--new-flows-per-source", "reuse_port": "--reuse-port",
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	c := newCommand("run", runUsage, stdout, stderr)
	f := runFlags{admin: relay.DefaultAdmin, grace: relay.DefaultGrace, mode: "auto", proxy: "none", logFormat: "text", logLevel: "info", accessLog: true,
		sockbuf: relay.DefaultSockBuf, connectTimeout: relay.DefaultConnectTimeout}
	fs := c.fs
	fs.StringVar(&f.config, "config", "", "read the relays from the TOML `FILE`")
	fs.StringVar(&f.listen, "listen", "", "accept clients on `ADDR` (host:port; port 0 picks one)")
	fs.Var(listFlag{&f.to}, "to", "relay to the target `ADDR` (host:port); repeat, or separate with commas, for round-robin")
	fs.BoolVar(&f.udp, "udp", false, "relay UDP datagrams (a flow per client address) instead of TCP")
	fs.BoolVar(&f.reusePort, "reuse-port", false, "share --listen with other processes that ask to (SO_REUSEPORT), for a zero-downtime swap; "+
		"without it, an address another socket listens on is refused")
	fs.Var(sizeFlag{&f.max}, "max", "end a flow once one direction has moved `BYTES` (64MiB-style suffixes); 0 is unlimited")
	fs.Var(durationFlag{&f.idle}, "idle", "end a direction of a flow after `DURATION` without data (Go syntax: 30s, 5m); default 10m (TCP) or 1m (UDP); 0 turns it off (TCP only)")
	fs.Var(durationFlag{&f.keepalive}, "keepalive", "probe a TCP peer, client or target, after `DURATION` of silence (then 4 probes a quarter of it apart, 1s to 15s), so that a peer that vanished is found; default 60s; 0 turns it off")
	fs.Var(choiceFlag{&f.mode, []string{"auto", "user", "kernel"}}, "mode",
		"how bytes move, `MODE`: auto (user, then kernel once a flow proves to be bulk), user (through mbufs) or kernel (splice(2))")
	fs.Var(durationFlag{&f.connectTimeout}, "connect-timeout", "give up on a target that does not answer a connect within `DURATION`, and try the next")
	fs.Var(choiceFlag{&f.proxy, []string{"none", "v1", "v2"}}, "proxy-protocol", "send a PROXY protocol header of `VERSION` v1 or v2 to the target (TCP only)")
	fs.IntVar(&f.workers, "workers", 0, "softnet workers (event loops), `N`; 0 is one per CPU")
	fs.Int64Var(&f.maxFlows, "max-flows", 0, fmt.Sprintf("refuse new clients while `N` flows are open over every relay; 0 derives it from the descriptor limit "+
		"(a tenth, at least %d, kept for the rest; %d now)", relay.MinFDReserve, relay.DefaultMaxFlows()))
	fs.IntVar(&f.maxPerSource, "max-flows-per-source", relay.DefaultMaxFlowsPerSource, "refuse new clients of a source address (an IPv6 /64) that has `N` flows open; 0 is no cap")
	fs.StringVar(&f.ratePerSource, "new-flows-per-source", "", "refuse new clients of a source address (an IPv6 /64) beyond `RATE` (100/s, 600/m, 10/5s); default none")
	fs.Var(sizeFlag{&f.memLimit}, "mem-limit", memLimitUsage())
	fs.Var(sizeFlag{&f.sockbuf}, "sockbuf", "size the kernel socket buffers (SO_RCVBUF, SO_SNDBUF) of every client and target socket to `SIZE`, "+
		"so that stalled flows cannot park megabytes each in the kernel, beyond --mem-limit; 0 leaves Linux's autotuning")
	fs.StringVar(&f.admin, "admin", f.admin, "serve /metrics, /debug/mbuf, /healthz (and /debug/pprof/ with --admin-pprof) on `ADDR`; \"off\" for none")
	fs.BoolVar(&f.adminPublic, "admin-public", false, "allow --admin on a non-loopback address; requires --admin-token-file")
	fs.BoolVar(&f.adminPprof, "admin-pprof", false, "serve Go's profiles on /debug/pprof/ of --admin")
	fs.StringVar(&f.adminTokenFile, "admin-token-file", "", "require the bearer token in `FILE` (at least 16 bytes) on every path of --admin but /healthz")
	fs.Var(durationFlag{&f.grace}, "grace", "at SIGINT/SIGTERM, let open flows finish for `DURATION`")
	fs.Var(choiceFlag{&f.logFormat, []string{"text", "json"}}, "log-format", "log `FORMAT`: text or json")
	fs.Var(choiceFlag{&f.logLevel, []string{"debug", "info", "warn", "error"}}, "log-level", "log from `LEVEL` debug, info, warn or error")
	fs.BoolVar(&f.accessLog, "access-log", true, "log a line per flow at info level as it ends: relay, client, target, bytes each way, duration, how it ended; "+
		"--access-log=false for none")
	if code := c.parse(args); code >= 0 {
		return code
	}
	cfg, code := c.runConfig(&f)
	if code >= 0 {
		return code
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	pinned := map[string]bool{"mem_limit": c.set("mem-limit"), "sockbuf": c.set("sockbuf"), "grace": c.set("grace"),
		"max_flows": c.set("max-flows"), "log_level": c.set("log-level"), "access_log": c.set("access-log")}
	if err := serve(cfg, f.adminToken, f.config, pinned, log); err != nil {
		log.Error(err.Error())
		return 1
	}
	return 0
}

// runConfig makes the configuration from --config or the relay flags, overridden by the
// global flags given. It returns -1 to go on, or the exit status.
func (c *command) runConfig(f *runFlags) (*relay.Config, int) {
	var cfg *relay.Config
	if f.config != "" {
		for _, name := range relayFlags {
			if c.set(name) {
				return nil, c.fail(fmt.Errorf("--%s cannot be used with --config: the file describes the relays", name))
			}
		}
		var err error
		if cfg, err = relay.LoadConfig(f.config); err != nil {
			return nil, c.fail(err)
		}
	} else {
		if f.listen == "" || len(f.to) == 0 {
			return nil, c.fail(errors.New("give --listen ADDR and --to ADDR, or --config FILE"))
		}
		r := relay.RelayConfig{Protocol: "tcp", Listen: f.listen, Targets: f.to, Max: f.max, Idle: f.idle, Mode: relay.Mode(f.mode),
			ConnectTimeout: f.connectTimeout}
		if f.udp {
			r.Protocol = "udp"
		}
		r.Name = r.Protocol + "-" + r.Listen
		// Given as 0, a timer is off; not given, it has its default.
		if c.set("idle") && f.idle == 0 {
			r.Idle = relay.Off
		}
		r.KeepAlive = f.keepalive
		if c.set("keepalive") && f.keepalive == 0 {
			r.KeepAlive = relay.Off
		}
		r.ProxyProtocol, _ = relay.ParseProxyVersion(f.proxy)
		r.MaxFlowsPerSource = f.maxPerSource
		r.ReusePort = f.reusePort
		if f.maxPerSource == 0 {
			r.MaxFlowsPerSource = -1 // no cap
		}
		var err error
		if r.NewFlowsPerSource, err = relay.ParseRate(f.ratePerSource); err != nil {
			return nil, c.fail(fmt.Errorf("--new-flows-per-source %q: %w", f.ratePerSource, err))
		}
		cfg = &relay.Config{Relays: []relay.RelayConfig{r}, Admin: relay.DefaultAdmin, Grace: relay.DefaultGrace, LogFormat: "text", AccessLog: true,
			SockBuf: relay.DefaultSockBuf}
	}
	overrides := map[string]func(){
		"admin":            func() { cfg.Admin = f.admin },
		"admin-public":     func() { cfg.AdminPublic = f.adminPublic },
		"admin-pprof":      func() { cfg.AdminPprof = f.adminPprof },
		"admin-token-file": func() { cfg.AdminTokenFile = f.adminTokenFile },
		"workers":          func() { cfg.Workers = f.workers },
		"max-flows":        func() { cfg.MaxFlows = f.maxFlows },
		"mem-limit":        func() { cfg.MemLimit = f.memLimit },
		"sockbuf":          func() { cfg.SockBuf = f.sockbuf },
		"grace":            func() { cfg.Grace = f.grace },
		"log-format":       func() { cfg.LogFormat = f.logFormat },
		"log-level":        func() { cfg.LogLevel = f.logLevel },
		"access-log":       func() { cfg.AccessLog = f.accessLog },
	}
	for name, apply := range overrides {
		if c.set(name) {
			apply()
		}
	}
	if err := errors.Join(cfg.Validate(), cfg.CheckHost()); err != nil {
		return nil, c.fail(flagErrors(err, f.config == ""))
	}
	if err := checkMemLimit(cfg, f.config); err != nil {
		return nil, c.fail(flagErrors(err, f.config == ""))
	}
	if cfg.Admin == "" {
		cfg.Admin = relay.DefaultAdmin
	}
	var err error
	if f.adminToken, err = loadAdminToken(cfg, f.config == "" || c.set("admin-token-file"), f.config); err != nil {
		return nil, c.fail(err)
	}
	if cfg.Grace == 0 && !c.set("grace") {
		cfg.Grace = relay.DefaultGrace
	}
	return cfg, -1
}

// flagErrors rewrites configuration errors to name flags rather than keys when the
// configuration came from flags.
func flagErrors(err error, fromFlags bool) error {
	if !fromFlags {
		return err
	}
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *relay.ConfigError
		if errors.As(e, &ce) {
			name := flagOf[ce.Key]
			if name == "" {
				name = ce.Key
			}
			if ce.Value != "" {
				name += " " + ce.Value
			}
			out = append(out, fmt.Errorf("%s: %w", name, ce.Err))
			return
		}
		out = append(out, e)
	}
	walk(err)
	return errors.Join(out...)
}

// logLevel is the daemon's log level, which a reload may change.
var logLevel slog.LevelVar

// newLogger returns the daemon's logger, writing format ("text" or "json") to w from
// level ("" is info) on.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	setLogLevel(level)
	opt := &slog.HandlerOptions{Level: &logLevel}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opt))
	}
	return slog.New(slog.NewTextHandler(w, opt))
}

// setLogLevel sets the daemon's log level by name ("" is info).
func setLogLevel(level string) {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	logLevel.Set(lv)
}

// serve runs the relays of cfg until SIGINT or SIGTERM, reloading configFile (if any) at
// SIGHUP; adminToken is the admin endpoint's bearer token, if any; pinned names the
// reloadable global settings that flags set, which a reload leaves alone.
func serve(cfg *relay.Config, adminToken []byte, configFile string, pinned map[string]bool, log *slog.Logger) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	mem, err := newMemory(cfg)
	if err != nil {
		return err
	}
	srv := relay.NewServer(relay.ServerOptions{Log: log, Workers: mem.workers, SockBuf: cfg.SockBuf, MaxFlows: cfg.MaxFlows,
		AccessLog: cfg.AccessLog, Version: version()})
	if d := relay.DefaultMaxFlows(); cfg.MaxFlows > d {
		log.Warn("max_flows is more than the descriptor limit allows: clients beyond it will meet EMFILE, not the cap",
			"max_flows", cfg.MaxFlows, "allowed", d)
	}
	if err := srv.Apply(cfg.Relays); err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	admin, err := startAdmin(cfg, adminToken, srv, log)
	if err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	log.Info("ready", "version", version(), "relays", len(cfg.Relays), "pid", os.Getpid())
	notify("READY=1", statusLine("serving %d relays", len(cfg.Relays)))

	var sig os.Signal
	for sig = range sigs {
		if sig != syscall.SIGHUP {
			break
		}
		notifyReloading()
		var err error
		if cfg, err = reload(cfg, configFile, pinned, srv, mem, log); err != nil {
			notify("READY=1", statusLine("reload failed, the previous configuration stays where it could: %v", err))
		} else {
			notify("READY=1", statusLine("serving %d relays; reloaded %s", len(cfg.Relays), time.Now().Format(time.RFC3339)))
		}
	}
	srv.StopAccepting() // before the log line that says so
	notify("STOPPING=1", statusLine("draining %d flows for up to %v", srv.ActiveFlows(), cfg.Grace))
	log.Info("shutting down: no new flows; open flows may finish",
		"signal", sig.String(), "flows", srv.ActiveFlows(), "grace", cfg.Grace.String(), "second_signal", "resets them at once")
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Grace)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
wait:
	for {
		select {
		case err = <-done:
			break wait
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				log.Warn("SIGHUP while shutting down: not reloaded")
				continue
			}
			log.Warn("second signal: resetting the open flows now", "signal", sig.String(), "flows", srv.ActiveFlows())
			cancel()
		}
	}
	if admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		admin.Shutdown(ctx)
		cancel()
	}
	if err != nil {
		log.Info("stopped before every flow finished")
	} else {
		log.Info("stopped: every flow finished")
	}
	return nil
}

// reload applies the configuration file again and returns the configuration in force,
// and why the reload was not applied whole, if it was not.
func reload(cur *relay.Config, file string, pinned map[string]bool, srv *relay.Server, mem *memory, log *slog.Logger) (*relay.Config, error) {
	if file == "" {
		log.Warn("SIGHUP: nothing to reload (started without --config)")
		return cur, nil
	}
	next, err := relay.LoadConfig(file)
	if err != nil {
		srv.NoteReload(false)
		log.Error("SIGHUP: configuration refused; the running one stays", "err", err.Error())
		return cur, fmt.Errorf("configuration refused: %w", err)
	}
	// A changed admin address, worker count or log format needs a restart; the memory
	// limit, the socket buffer size (for new sockets) and the grace period take the
	// file's values, unless flags set them.
	next.Admin, next.AdminPublic, next.Workers, next.LogFormat = cur.Admin, cur.AdminPublic, cur.Workers, cur.LogFormat
	next.AdminPprof, next.AdminTokenFile = cur.AdminPprof, cur.AdminTokenFile
	if next.Grace == 0 || pinned["grace"] {
		next.Grace = cur.Grace
	}
	if pinned["mem_limit"] {
		next.MemLimit = cur.MemLimit
	}
	if next.MemLimit != cur.MemLimit {
		if err := mem.setLimit(next.MemLimit); err != nil {
			log.Error("SIGHUP: memory limit not changed", "err", err.Error())
			next.MemLimit = cur.MemLimit
		}
	}
	if pinned["max_flows"] {
		next.MaxFlows = cur.MaxFlows
	}
	if next.MaxFlows != cur.MaxFlows {
		srv.SetMaxFlows(next.MaxFlows)
	}
	if pinned["log_level"] {
		next.LogLevel = cur.LogLevel
	}
	setLogLevel(next.LogLevel)
	if pinned["access_log"] {
		next.AccessLog = cur.AccessLog
	}
	srv.SetAccessLog(next.AccessLog)
	if pinned["sockbuf"] {
		next.SockBuf = cur.SockBuf
	}
	if next.SockBuf != cur.SockBuf {
		srv.SetSockBuf(next.SockBuf)
	}
	err = srv.Apply(next.Relays)
	srv.NoteReload(err == nil)
	if err != nil {
		log.Error("SIGHUP: some relays did not start", "err", err.Error())
		err = fmt.Errorf("some relays did not start: %w", err)
	}
	log.Info("configuration reloaded", "file", file, "relays", len(next.Relays), "flows", srv.ActiveFlows())
	return next, err
}
