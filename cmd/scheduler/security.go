package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/switchyard/switchyard/marathon/httpapi"
	"github.com/switchyard/switchyard/scheduler/server"
)

// defaultHTTPPort is used when --http-address names only an interface.
const defaultHTTPPort = "8080"

// securityFlags are the flags of the API's listeners, authentication and
// limits (docs/security.md).
func securityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "http-address", Aliases: []string{"http-addr"}, Value: ":" + defaultHTTPPort,
			Usage: "interface[:port] of the API (Marathon v2 and agent API); an interface alone uses port " + defaultHTTPPort + "; also the interface of --https-port"},
		&cli.BoolFlag{Name: "disable-http", Usage: "serve HTTPS only (needs --tls-cert and --tls-key)"},
		&cli.IntFlag{Name: "https-port", Value: 8443, Usage: "port of the HTTPS API, served when --tls-cert and --tls-key are set"},
		&cli.StringFlag{Name: "tls-cert", Usage: "PEM certificate (chain) of the HTTPS API; re-read when it changes"},
		&cli.StringFlag{Name: "tls-key", Usage: "PEM private key of --tls-cert"},
		&cli.StringFlag{Name: "http-credentials", EnvVars: []string{"SWITCHYARD_HTTP_CREDENTIALS"},
			Usage: "users of the API with full access, user:password[,user2:password2] (Marathon's --http_credentials)"},
		&cli.StringFlag{Name: "http-credentials-file", Usage: "file of users with full access, one user:password per line"},
		&cli.StringFlag{Name: "http-credentials-readonly", EnvVars: []string{"SWITCHYARD_HTTP_CREDENTIALS_READONLY"},
			Usage: "users that may only GET (e.g. load balancers), user:password[,user2:password2]"},
		&cli.StringFlag{Name: "http-credentials-readonly-file", Usage: "file of read-only users, one user:password per line"},
		&cli.StringFlag{Name: "http-realm", Value: httpapi.DefaultRealm, Usage: "realm of the Basic authentication challenge (Marathon's --http_realm)"},
		&cli.BoolFlag{Name: "insecure-no-auth", Usage: "allow serving the API without credentials on a non-loopback address"},
		&cli.IntFlag{Name: "max-versions", Aliases: []string{"zk-max-versions"}, Value: 50, Usage: "stored definitions kept per app, the newest (Marathon's --zk_max_versions)"},
		&cli.IntFlag{Name: "max-event-streams", Value: httpapi.DefaultMaxEventStreams, Usage: "open /v2/events streams allowed; more get 503"},
		&cli.DurationFlag{Name: "http-read-timeout", Value: server.DefaultReadTimeout, Usage: "time a client has to send a whole request, header and body"},
		&cli.DurationFlag{Name: "http-idle-timeout", Value: server.DefaultIdleTimeout, Usage: "idle keep-alive connections are closed after this long"},
		&cli.Int64Flag{Name: "max-body-bytes", Value: httpapi.DefaultMaxBodyBytes, Usage: "largest request body; larger ones get 413"},
	}
}

// security is what securityFlags configure.
type security struct {
	httpAddr  string // "" when --disable-http
	httpsAddr string // "" without TLS
	tls       *tls.Config
	auth      httpapi.AuthConfig
}

// leaderScheme is the scheme of the advertised address.
func (s security) leaderScheme() string {
	if s.httpAddr != "" {
		return "http"
	}
	return "https"
}

// advertised is the host:port reported as leader: HTTPS when HTTP is off.
func (s security) advertised() string {
	if s.httpAddr != "" {
		return s.httpAddr
	}
	return s.httpsAddr
}

// securityConfig reads securityFlags and refuses an API that would be open
// to the network without credentials, unless --insecure-no-auth.
func securityConfig(c *cli.Context, log *slog.Logger) (security, error) {
	var s security
	addr := c.String("http-address")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// An interface alone, as Marathon's --http_address.
		if _, _, err2 := net.SplitHostPort(net.JoinHostPort(addr, defaultHTTPPort)); err2 != nil || addr == "" {
			return s, fmt.Errorf("--http-address %q: %w", addr, err)
		}
		host, port = addr, defaultHTTPPort
	}
	certFile, keyFile := c.String("tls-cert"), c.String("tls-key")
	if (certFile == "") != (keyFile == "") {
		return s, errors.New("--tls-cert and --tls-key go together")
	}
	if certFile != "" {
		if s.tls, err = server.TLSConfig(certFile, keyFile, log); err != nil {
			return s, err
		}
		s.httpsAddr = net.JoinHostPort(host, strconv.Itoa(c.Int("https-port")))
	}
	if !c.Bool("disable-http") {
		s.httpAddr = net.JoinHostPort(host, port)
	} else if s.tls == nil {
		return s, errors.New("--disable-http needs --tls-cert and --tls-key: nothing would be served")
	}

	users, err := credentials(c, "http-credentials")
	if err != nil {
		return s, err
	}
	readOnly, err := credentials(c, "http-credentials-readonly")
	if err != nil {
		return s, err
	}
	s.auth = httpapi.AuthConfig{Users: users, ReadOnly: readOnly, Realm: c.String("http-realm"), Logger: log}
	switch {
	case len(users)+len(readOnly) > 0:
		log.Info("API requires HTTP basic authentication", "users", len(users), "read_only_users", len(readOnly))
	case isLoopback(host):
		log.Info("API without authentication, reachable from this machine only", "address", host)
	case c.Bool("insecure-no-auth"):
		log.Warn("API without authentication open to the network (--insecure-no-auth): anyone who can reach it can run commands on the agents", "address", addr)
	default:
		log.Error("refusing to start: the API would be open to the network without authentication; "+
			"set --http-credentials (or --http-credentials-file), listen on a loopback address (--http-address 127.0.0.1:8080), "+
			"or accept the risk with --insecure-no-auth", "address", addr)
		return s, fmt.Errorf("API on %q without credentials: set --http-credentials, a loopback --http-address, or --insecure-no-auth", addr)
	}
	if s.tls == nil && len(users)+len(readOnly) > 0 && !isLoopback(host) {
		log.Warn("credentials are sent in clear text over plain HTTP; set --tls-cert and --tls-key")
	}
	return s, nil
}

// credentials merges the users of flag name and of its -file variant.
func credentials(c *cli.Context, name string) ([]httpapi.Credential, error) {
	var out []httpapi.Credential
	if v := c.String(name); v != "" {
		cs, err := httpapi.ParseCredentials(v)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", name, err)
		}
		out = append(out, cs...)
	}
	if path := c.String(name + "-file"); path != "" {
		cs, err := httpapi.ReadCredentialsFile(path)
		if err != nil {
			return nil, fmt.Errorf("--%s-file: %w", name, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// isLoopback reports whether host names only this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
