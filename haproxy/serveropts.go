package haproxy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// addServerKeywords lists the `server` keywords HAProxy 2.6's "add server"
// accepts (management guide, "add server") with their number of arguments.
// Keywords with a more complex syntax (source/usesrc) are left out on
// purpose, and so is everything else, notably "cookie" (rejected by 2.6:
// "'cookie' option is not accepted for dynamic server"): a server using them
// needs a reload.
var addServerKeywords = map[string]int{
	"agent-check": 0, "allow-0rtt": 0, "backup": 0, "check": 0, "check-send-proxy": 0,
	"check-ssl": 0, "check-via-socks4": 0, "disabled": 0, "enabled": 0,
	"force-sslv3": 0, "force-tlsv10": 0, "force-tlsv11": 0, "force-tlsv12": 0, "force-tlsv13": 0,
	"no-ssl-reuse": 0, "no-sslv3": 0, "no-tlsv10": 0, "no-tlsv11": 0, "no-tlsv12": 0, "no-tlsv13": 0,
	"no-tls-tickets": 0, "send-proxy": 0, "send-proxy-v2": 0, "send-proxy-v2-ssl": 0,
	"send-proxy-v2-ssl-cn": 0, "ssl": 0, "tfo": 0, "tls-tickets": 0,

	"agent-addr": 1, "agent-inter": 1, "agent-port": 1, "agent-send": 1, "alpn": 1, "addr": 1,
	"ca-file": 1, "check-alpn": 1, "check-proto": 1, "check-sni": 1, "ciphers": 1,
	"ciphersuites": 1, "crl-file": 1, "crt": 1, "downinter": 1, "error-limit": 1, "fall": 1,
	"fastinter": 1, "id": 1, "inter": 1, "maxconn": 1, "maxqueue": 1, "minconn": 1, "npn": 1,
	"observe": 1, "on-error": 1, "on-marked-down": 1, "on-marked-up": 1, "pool-low-conn": 1,
	"pool-max-conn": 1, "pool-purge-delay": 1, "port": 1, "proto": 1, "proxy-v2-options": 1,
	"rise": 1, "slowstart": 1, "sni": 1, "ssl-max-ver": 1, "ssl-min-ver": 1, "track": 1,
	"verify": 1, "verifyhost": 1, "weight": 1, "ws": 1,
}

// neutralDefaultKeywords are default-server settings (with their number of
// arguments) that make no difference to a server whose address is an IP
// literal, which is the only kind Diff adds at runtime: they only steer
// name resolution.
var neutralDefaultKeywords = map[string]int{
	"init-addr": 1, "resolvers": 1, "resolve-prefer": 1, "resolve-net": 1, "resolve-opts": 1,
}

// effectiveOptions merges the default-server settings that apply to a
// server (defaults, in order) with the server's own options, as HAProxy does
// for configured servers: a keyword on the server line wins over the same
// keyword in default-server. Settings that only steer name resolution are
// dropped. HAProxy does not apply default-server to servers added at
// runtime, so Diff hands Apply the merged options. It fails for a
// default-server setting "add server" does not accept.
func effectiveOptions(defaults []string, opts string) (string, error) {
	if len(defaults) == 0 {
		return opts, nil
	}
	own := map[string]bool{}
	for _, w := range strings.Fields(opts) {
		if _, ok := addServerKeywords[w]; ok {
			own[w] = true
		}
	}
	var merged []string
	for i := 0; i < len(defaults); i++ {
		kw := defaults[i]
		if n, ok := neutralDefaultKeywords[kw]; ok {
			i += n
			continue
		}
		n, ok := addServerKeywords[kw]
		if !ok {
			return "", fmt.Errorf("default-server %q is not supported by add server", kw)
		}
		if i+n >= len(defaults) {
			return "", fmt.Errorf("default-server %q needs an argument", kw)
		}
		if !own[kw] {
			merged = append(merged, defaults[i:i+n+1]...)
		}
		i += n
	}
	merged = append(merged, strings.Fields(opts)...)
	return strings.Join(merged, " "), nil
}

// runtimeServer is a server translated for "add server".
type runtimeServer struct {
	args     string // options to pass to "add server"
	check    bool   // needs "enable health"
	agent    bool   // needs "enable agent"
	disabled bool   // must stay in maintenance
	weight   int    // effective weight (1 when unset)
}

// toRuntime translates a configured server into what "add server" needs to
// create the same effective server, or explains why it cannot.
func toRuntime(s Server) (runtimeServer, error) {
	var rs runtimeServer
	if _, err := netip.ParseAddr(s.Address); err != nil {
		return rs, fmt.Errorf("server %s: address %q is not an IP literal (dynamic servers are not resolved)", s.Name, s.Address)
	}
	if s.Port <= 0 || s.Port > 65535 {
		return rs, fmt.Errorf("server %s: address needs a plain port", s.Name)
	}
	words := strings.Fields(s.Options)
	seen := map[string]bool{}
	rs.weight = 1
	for i := 0; i < len(words); i++ {
		kw := words[i]
		n, ok := addServerKeywords[kw]
		if !ok {
			return rs, fmt.Errorf("server %s: %q is not supported by add server", s.Name, kw)
		}
		if i+n >= len(words) {
			return rs, fmt.Errorf("server %s: %q needs an argument", s.Name, kw)
		}
		seen[kw] = true
		if kw == "weight" {
			w, err := strconv.Atoi(words[i+1])
			if err != nil || w < 0 || w > 256 {
				return rs, fmt.Errorf("server %s: bad weight %q", s.Name, words[i+1])
			}
			rs.weight = w
		}
		i += n
	}
	// HAProxy derives check-ssl and check-send-proxy from ssl and send-proxy
	// for configured servers but not for dynamic ones (configuration manual,
	// "check"), unless the check goes to another port or address.
	extra := words
	if seen["check"] && !seen["port"] && !seen["addr"] {
		if seen["ssl"] && !seen["check-ssl"] {
			extra = append(extra, "check-ssl")
		}
		if (seen["send-proxy"] || seen["send-proxy-v2"]) && !seen["check-send-proxy"] {
			extra = append(extra, "check-send-proxy")
		}
	}
	rs.args = strings.Join(extra, " ")
	rs.check = seen["check"]
	rs.agent = seen["agent-check"]
	rs.disabled = seen["disabled"]
	return rs, nil
}

// withoutWeight returns the options with any "weight N" removed, and the
// weight (1 when unset or unreadable).
func withoutWeight(opts string) (string, int) {
	words := strings.Fields(opts)
	out := make([]string, 0, len(words))
	w := 1
	for i := 0; i < len(words); i++ {
		if words[i] == "weight" && i+1 < len(words) {
			if n, err := strconv.Atoi(words[i+1]); err == nil {
				w = n
				i++
				continue
			}
		}
		out = append(out, words[i])
	}
	return strings.Join(out, " "), w
}
