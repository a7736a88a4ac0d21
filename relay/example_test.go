package relay_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/softnet-go/softnet/relay"
)

func ExampleParseConfig() {
	cfg, err := relay.ParseConfig([]byte(`
mem_limit = "64MiB"

[[relay]]
name = "web"
listen = "127.0.0.1:8080"
targets = ["127.0.0.1:8081", "127.0.0.1:8082"]
idle = "5m"
`), "spliced.toml")
	if err != nil {
		fmt.Println(err)
		return
	}
	r := cfg.Relays[0]
	fmt.Println(r.Name, r.Protocol, r.Listen, r.Targets, r.Idle, r.Mode, relay.FormatSize(cfg.MemLimit))

	_, err = relay.ParseConfig([]byte(`
[[relay]]
name = "web"
listen = "127.0.0.1:80800"
targets = ["127.0.0.1:8081"]
max = "64XB"
`), "spliced.toml")
	fmt.Println(err)
	// Output:
	// web tcp 127.0.0.1:8080 [127.0.0.1:8081 127.0.0.1:8082] 5m0s auto 64MiB
	// spliced.toml:4: relay "web": listen = "127.0.0.1:80800": port 80800 is out of range 0-65535
	// spliced.toml:6: relay "web": max = "64XB": bad size "64XB" (want bytes, optionally with a unit: 65536, 64KiB, 64MiB, 1GiB, 10MB)
}

func ExampleServer() {
	// A target that answers "hello, " and what it read.
	target, _ := net.Listen("tcp", "127.0.0.1:0")
	defer target.Close()
	go func() {
		c, err := target.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(c)
		c.Write(append([]byte("hello, "), b...))
		c.Close()
	}()

	srv := relay.NewServer(relay.ServerOptions{})
	err := srv.Apply([]relay.RelayConfig{{
		Name:     "example",
		Protocol: "tcp",
		Listen:   "127.0.0.1:0",
		Targets:  []string{target.Addr().String()},
		Idle:     time.Minute,
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	c, _ := net.Dial("tcp", srv.Addr("example").String())
	c.Write([]byte("relay"))
	c.(*net.TCPConn).CloseWrite() // passed on to the target as EOF
	b, _ := io.ReadAll(c)
	fmt.Println(string(b))
	c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(srv.Shutdown(ctx))
	// Output:
	// hello, relay
	// <nil>
}
