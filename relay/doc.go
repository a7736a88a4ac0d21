// Package relay runs TCP and UDP relays the way OpenBSD's relayd runs them on socket
// splicing: a listener per relay, one or more targets taken in turn, and for every flow two
// splices (client to target and target to client), each with its own byte limit and idle
// timeout, an honest half-close and metrics by ending reason.
//
// A Config describes the relays; LoadConfig reads one from a TOML file and reports every
// problem with the file, line, key and value. A Server runs the relays of a Config, applies
// a new Config without dropping the flows of relays that stay (SIGHUP), and shuts down
// gracefully. Handler serves the admin endpoint: /metrics, /debug/mbuf, /healthz, and
// /debug/pprof/ when asked, behind a bearer token when given one.
//
// New clients meet caps before they cost anything: the daemon's max_flows, and per
// relay max_flows_per_source and new_flows_per_source, checked on the worker that
// accepted the client; one over a cap is reset at once and counted by reason.
//
// The file format, with every key (sizes take 64MiB-style suffixes, durations Go's syntax):
//
//	admin = "127.0.0.1:6060"  # admin endpoint; loopback only unless admin_public = true
//	admin_pprof = false       # serve /debug/pprof/
//	admin_token_file = ""     # bearer token for all but /healthz; required with admin_public
//	workers = 0               # softnet workers; 0 is one per CPU
//	mem_limit = "256MiB"      # the shared mbuf memory limit; 0 is unlimited
//	max_flows = 0             # flows open at once; 0: derived from the descriptor limit
//	grace = "5s"              # how long open flows may finish at SIGINT/SIGTERM
//	log_format = "text"       # or "json"
//
//	[[relay]]
//	name = "web"                           # unique; labels the metrics
//	protocol = "tcp"                       # or "udp"
//	listen = "0.0.0.0:8080"
//	targets = ["10.0.0.1:80", "10.0.0.2:80"]  # round-robin; a refusing target is skipped
//	max = "1GiB"                           # per direction; 0 is unlimited
//	idle = "5m"                            # per direction; 10m if not given, "0" is none
//	keepalive = "60s"                      # TCP keepalive on both sockets; "0" is none
//	mode = "auto"                          # auto, user or kernel
//	connect_timeout = "5s"                 # per target connect; the next target is tried
//	proxy_protocol = "v2"                  # "", "v1" or "v2" (TCP only)
//	max_flows_per_source = 512             # open flows per source address (IPv6: /64); 0 is none
//	new_flows_per_source = "100/s"         # new flows per source and period; none if not given
//	reuse_port = false                     # share listen with other processes (SO_REUSEPORT)
package relay
