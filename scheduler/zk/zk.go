// Package zk holds what the scheduler's ZooKeeper pieces share: the
// Marathon-style zk:// URL (--zk zk://user:pass@h1:2181,h2:2181/switchyard),
// connecting with its digest credentials, the ACL to create nodes with,
// and creating a path's parents.
package zk

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// URL is a parsed zk:// URL.
type URL struct {
	// Servers are host:port (2181 when the URL names no port).
	Servers []string
	// Path is the root node of our data ("/switchyard"), never "/".
	Path string
	// User and Password are the digest credentials (empty: none).
	User, Password string
}

// ParseURL parses zk://[user:pass@]host[:port][,host[:port]...]/path.
func ParseURL(raw string) (URL, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(raw), "zk://")
	if !ok {
		return URL{}, fmt.Errorf("zk url %q: want zk://host:2181[,host:2181...]/path", raw)
	}
	var u URL
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		userinfo := rest[:at]
		rest = rest[at+1:]
		user, pass, ok := strings.Cut(userinfo, ":")
		if !ok || user == "" {
			return URL{}, fmt.Errorf("zk url %q: credentials must be user:password", raw)
		}
		var err error
		if u.User, err = url.PathUnescape(user); err != nil {
			return URL{}, fmt.Errorf("zk url user: %w", err)
		}
		if u.Password, err = url.PathUnescape(pass); err != nil {
			return URL{}, fmt.Errorf("zk url password: %w", err)
		}
	}
	hosts, p, _ := strings.Cut(rest, "/")
	p = path.Clean("/" + p)
	if p == "/" {
		return URL{}, fmt.Errorf("zk url %q: name a path, e.g. zk://host:2181/switchyard", raw)
	}
	u.Path = p
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, "2181")
		}
		u.Servers = append(u.Servers, h)
	}
	if len(u.Servers) == 0 {
		return URL{}, fmt.Errorf("zk url %q: no servers", raw)
	}
	return u, nil
}

// String renders the URL with the password hidden.
func (u URL) String() string {
	cred := ""
	if u.User != "" {
		cred = u.User + ":***@"
	}
	return "zk://" + cred + strings.Join(u.Servers, ",") + u.Path
}

// ACL is the ACL our nodes get: all rights to the URL's digest user, or
// open when the URL has no credentials.
func (u URL) ACL() []zk.ACL {
	if u.User != "" {
		return zk.DigestACL(zk.PermAll, u.User, u.Password)
	}
	return zk.WorldACL(zk.PermAll)
}

// Connect opens a session with the ensemble (it connects in the
// background; the events channel reports session state changes) and
// registers the URL's digest credentials. onEvent (optional) sees every
// session event as it happens; it must not block.
func Connect(u URL, sessionTimeout time.Duration, log *slog.Logger, onEvent func(zk.Event)) (*zk.Conn, <-chan zk.Event, error) {
	if log == nil {
		log = slog.Default()
	}
	if onEvent == nil {
		onEvent = func(zk.Event) {}
	}
	conn, events, err := zk.Connect(u.Servers, sessionTimeout,
		zk.WithLogger(slogAdapter{log.With("component", "zk")}), zk.WithLogInfo(false), zk.WithEventCallback(onEvent))
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", u, err)
	}
	if u.User != "" {
		if err := conn.AddAuth("digest", []byte(u.User+":"+u.Password)); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("zk auth: %w", err)
		}
	}
	return conn, events, nil
}

// EnsurePath creates p and its missing parents (persistent, empty).
func EnsurePath(conn *zk.Conn, p string, acl []zk.ACL) error {
	cur := ""
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		cur += "/" + part
		ok, _, err := conn.Exists(cur)
		if err != nil {
			return fmt.Errorf("zk exists %s: %w", cur, err)
		}
		if ok {
			continue
		}
		if _, err := conn.Create(cur, nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("zk create %s: %w", cur, err)
		}
	}
	return nil
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(format string, args ...any) {
	a.log.Debug(fmt.Sprintf(format, args...))
}
