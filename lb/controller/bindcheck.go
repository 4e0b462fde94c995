package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/switchyard/switchyard/haproxy"
)

// Checking the new listening ports before a reload.
//
// A reload whose configuration binds a port another process holds fails,
// and costs more than the reload: HAProxy's new process asks the old
// worker to pause its listeners while it retries the bind (about 2 s on
// HAProxy 2.6), so every frontend refuses connections meanwhile. lb runs
// in HAProxy's network namespace (it starts HAProxy), so before a reload it
// binds each address the new configuration adds, as HAProxy would
// (SO_REUSEADDR and SO_REUSEPORT), and blames the ones that fail without
// reloading. Ports the running configuration binds are not checked: HAProxy
// holds them, and passes them to its new worker.

// bindBusyError says which new bind lines cannot be bound; loadFailure
// treats it as HAProxy's own failure to load the configuration.
type bindBusyError struct {
	alerts []haproxy.Alert
}

func (e *bindBusyError) Error() string {
	msgs := make([]string, len(e.alerts))
	for i, a := range e.alerts {
		msgs[i] = a.Text
	}
	return "cannot bind new listening addresses: " + strings.Join(msgs, "; ")
}

// bindLine is one "bind" address of a frontend or listen section.
type bindLine struct {
	line    int    // 1-based
	section string // frontend name
	network string // tcp4 or tcp6
	addr    string // host:port for net.Listen
	port    int
}

// bindLines returns the TCP addresses cfg's frontends bind. Unix sockets,
// fd@, port ranges and other forms lb does not understand are left out.
func bindLines(cfg []byte) []bindLine {
	var out []bindLine
	var kind, name string
	n := 0
	for line := range bytes.Lines(cfg) {
		n++
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if sectionKeywords[f[0]] {
			kind, name = f[0], ""
			if len(f) > 1 {
				name = f[1]
			}
			continue
		}
		if f[0] != "bind" || len(f) < 2 || (kind != "frontend" && kind != "listen") {
			continue
		}
		for _, a := range strings.Split(f[1], ",") {
			if b, ok := parseBindAddr(a); ok {
				b.line, b.section = n, name
				out = append(out, b)
			}
		}
	}
	return out
}

// parseBindAddr parses "[ipv4@|ipv6@]host:port" ("*" or "" is any IPv4
// address, as HAProxy reads it).
func parseBindAddr(a string) (bindLine, bool) {
	network := "tcp4"
	if p, rest, ok := strings.Cut(a, "@"); ok {
		switch p {
		case "ipv4", "tcp4", "tcp":
		case "ipv6", "tcp6":
			network = "tcp6"
		default:
			return bindLine{}, false
		}
		a = rest
	}
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return bindLine{}, false
	}
	host, ps := strings.Trim(a[:i], "[]"), a[i+1:]
	port, err := strconv.Atoi(ps)
	if err != nil || port <= 0 || port > 65535 {
		return bindLine{}, false
	}
	switch {
	case host == "" || host == "*":
		if network == "tcp6" {
			host = "::"
		} else {
			host = "0.0.0.0"
		}
	case strings.Contains(host, ":"):
		network = "tcp6"
	default:
		if net.ParseIP(host) == nil {
			return bindLine{}, false // a name: leave it to HAProxy
		}
	}
	return bindLine{network: network, addr: net.JoinHostPort(host, ps), port: port}, true
}

// busyBinds binds, and releases at once, each address next binds on a port
// cur binds on no address; it returns an alert, like HAProxy's, for each
// one another process holds.
func busyBinds(ctx context.Context, next, cur []byte) []haproxy.Alert {
	held := map[int]bool{}
	for _, b := range bindLines(cur) {
		held[b.port] = true
	}
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	var out []haproxy.Alert
	for _, b := range bindLines(next) {
		if held[b.port] {
			continue
		}
		ln, err := lc.Listen(ctx, b.network, b.addr)
		if err == nil {
			_ = ln.Close()
			continue
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			continue // not ours to judge (no such address here, ...): HAProxy will say
		}
		out = append(out, haproxy.Alert{Line: b.line,
			Text: fmt.Sprintf("Binding for frontend %s: cannot bind socket (Address already in use) for [%s]", b.section, b.addr)})
	}
	return out
}
