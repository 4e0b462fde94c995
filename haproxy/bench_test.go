package haproxy_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/haproxy"
	"github.com/switchyard/switchyard/haproxy/haproxytest"
)

// bigConfig renders n apps, each with a frontend and a backend of three
// servers, like marathon-lb's output.
func bigConfig(n int, extraServer bool) []byte {
	var sb strings.Builder
	sb.WriteString("global\n  maxconn 4096\n\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\n")
	for i := range n {
		fmt.Fprintf(&sb, "frontend app%d_%d\n  bind *:%d\n  mode http\n  use_backend app%d_%d\n\n", i, 10000+i, 10000+i, i, 10000+i)
		fmt.Fprintf(&sb, "backend app%d_%d\n  balance roundrobin\n  mode http\n  option forwardfor\n  option httpchk GET /health\n", i, 10000+i)
		for s := range 3 {
			fmt.Fprintf(&sb, "  server 10_0_%d_%d_%d 10.0.%d.%d:%d check inter 2s fall 3\n", i/250, i%250, 31000+s, i/250, i%250, 31000+s)
		}
		if extraServer && i == n/2 {
			sb.WriteString("  server 10_9_9_9_31999 10.9.9.9:31999 check inter 2s fall 3\n")
		}
		sb.WriteString("\n")
	}
	return []byte(sb.String())
}

func BenchmarkDiff1000Backends(b *testing.B) {
	old, new := bigConfig(1000, false), bigConfig(1000, true)
	ch, err := haproxy.Diff(old, new)
	if err != nil || len(ch.Add) != 1 {
		b.Fatalf("Diff = %v, %v; want one added server", ch, err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(new)))
	for b.Loop() {
		if _, err := haproxy.Diff(old, new); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyAddServer(b *testing.B) {
	port := haproxytest.FreePort(b)
	p := haproxytest.Start(b, fmt.Sprintf(`defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  balance roundrobin
  server s0 127.0.0.1:9 check inter 10s
`, port))
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		ch := haproxy.Change{Add: []haproxy.Server{{Backend: "be", Name: fmt.Sprintf("s%d", i),
			Address: "127.0.0.1", Port: 20000 + i%40000, Options: "check inter 10s fall 3"}}}
		if err := p.Apply(ctx, ch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReload(b *testing.B) {
	port := haproxytest.FreePort(b)
	p := haproxytest.Start(b, fmt.Sprintf(`defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:%d
  http-request return status 200
`, port))
	ctx := context.Background()
	client := &http.Client{Timeout: 5 * time.Second}
	for b.Loop() {
		if err := p.Reload(ctx, "benchmark"); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
}

func BenchmarkParse1000Backends(b *testing.B) {
	cfg := bigConfig(1000, false)
	b.ReportAllocs()
	b.SetBytes(int64(len(cfg)))
	for b.Loop() {
		p, err := haproxy.Parse(cfg)
		if err != nil || len(p.Backends()) != 1000 {
			b.Fatalf("Parse: %v", err)
		}
	}
}
