package cliutil

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
)

// DNSOptions are the settings of the scheduler's Mesos-DNS compatible
// server (scheduler/dns), as the flags give them.
type DNSOptions struct {
	Addr      string // empty: no DNS server
	Domain    string
	Resolvers []string // empty: the nameservers of /etc/resolv.conf
	TTL       uint32
	Timeout   time.Duration
	Refresh   time.Duration
}

// DNSFlags are the flags DNSOptionsFrom reads.
func DNSFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "dns-addr", Usage: "serve task names over DNS (UDP and TCP) on this address, e.g. :53 (empty: off)"},
		&cli.StringFlag{Name: "dns-domain", Value: "mesos", Usage: "DNS domain of the task names (<app>.marathon.<domain>)"},
		&cli.StringSliceFlag{Name: "dns-resolvers", Usage: "upstream resolvers (IP or IP:port) for names outside --dns-domain (default: the nameservers of /etc/resolv.conf)"},
		&cli.UintFlag{Name: "dns-ttl", Value: 60, Usage: "TTL of the DNS records, in seconds"},
		&cli.DurationFlag{Name: "dns-timeout", Value: 5 * time.Second, Usage: "timeout of one query forwarded upstream"},
		&cli.DurationFlag{Name: "dns-refresh", Value: 30 * time.Second, Usage: "rebuild the name table at least this often (it also follows every scheduler event)"},
	}
}

// DNSOptionsFrom reads the DNS flags.
func DNSOptionsFrom(c *cli.Context) (DNSOptions, error) {
	ttl := c.Uint("dns-ttl")
	if ttl == 0 || ttl > 1<<31-1 {
		return DNSOptions{}, fmt.Errorf("--dns-ttl %d: want 1 to 2147483647 seconds", ttl)
	}
	if c.Duration("dns-timeout") <= 0 || c.Duration("dns-refresh") <= 0 {
		return DNSOptions{}, fmt.Errorf("--dns-timeout and --dns-refresh must be positive")
	}
	return DNSOptions{
		Addr:      c.String("dns-addr"),
		Domain:    c.String("dns-domain"),
		Resolvers: c.StringSlice("dns-resolvers"),
		TTL:       uint32(ttl),
		Timeout:   c.Duration("dns-timeout"),
		Refresh:   c.Duration("dns-refresh"),
	}, nil
}
