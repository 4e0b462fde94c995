package httpapi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Credential is one user of the API (HTTP basic authentication).
type Credential struct {
	User     string
	Password string
}

// ParseCredentials parses Marathon's --http_credentials form:
// "user:password[,user2:password2]". A password may contain ":" (the
// user ends at the first one) but not ",".
func ParseCredentials(s string) ([]Credential, error) {
	var out []Credential
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		c, err := parseCredential(item)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("credentials: want user:password[,user2:password2]")
	}
	return out, nil
}

func parseCredential(s string) (Credential, error) {
	user, pass, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return Credential{}, errors.New("credentials: want user:password, no colon found")
	case user == "":
		return Credential{}, errors.New("credentials: want user:password, user is empty")
	case pass == "":
		return Credential{}, fmt.Errorf("credentials: user %q has an empty password", user)
	}
	return Credential{User: user, Password: pass}, nil
}

// ReadCredentialsFile reads users from a file: one "user:password" per
// line (the password may contain "," and ":"); blank lines and lines
// starting with "#" are skipped, surrounding whitespace is trimmed.
func ReadCredentialsFile(path string) ([]Credential, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read credentials file: %w", err)
	}
	var out []Credential
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c, err := parseCredential(line)
		if err != nil {
			return nil, fmt.Errorf("credentials file %s line %d: %w", path, n, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("credentials file %s: no user:password line", path)
	}
	return out, nil
}

// DefaultRealm is the realm of the WWW-Authenticate challenge, Marathon's.
const DefaultRealm = "Mesosphere"

// AuthConfig configures Authenticate.
type AuthConfig struct {
	// Users may do everything.
	Users []Credential
	// ReadOnly users may only GET and HEAD (a load balancer needs no
	// more: it reads /v2/apps and /v2/events).
	ReadOnly []Credential
	// Realm of the challenge (default DefaultRealm).
	Realm string
	// Exempt reports requests another layer authenticates; they pass
	// through untouched. Nil means IsAgentPath: the agent API has its own
	// authentication (cluster secret), never the users' basic auth.
	Exempt func(*http.Request) bool
	// Logger receives a warning per rejected request (default
	// slog.Default()), at most logBurst at once and logPerSecond after
	// that; the next line says how many were suppressed, so a password
	// guesser cannot flood the log.
	Logger *slog.Logger
	// Registry, when set, receives marathon_http_auth_rejections_total.
	Registry prometheus.Registerer
}

// Rate of the rejection warnings (see AuthConfig.Logger).
const (
	logBurst     = 20
	logPerSecond = 5
)

// IsAgentPath reports whether r is for the agent API (/agentapi/...),
// which AuthConfig.Exempt leaves alone by default.
func IsAgentPath(r *http.Request) bool {
	return r.URL.Path == "/agentapi" || strings.HasPrefix(r.URL.Path, "/agentapi/")
}

// IsOpenPath reports whether r needs no credentials: GET /ping and
// GET /v2/leader (health checks and leader discovery).
func IsOpenPath(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.URL.Path == "/ping" || r.URL.Path == "/v2/leader"
}

// role is what a request's credentials allow.
type role int

const (
	roleNone role = iota
	roleReadOnly
	roleFull
)

type hashedCred struct{ user, pass [sha256.Size]byte }

type authenticator struct {
	full, ro   []hashedCred
	challenge  string
	exempt     func(*http.Request) bool
	log        *slog.Logger
	budget     *logBudget
	rejections *prometheus.CounterVec
	next       http.Handler
}

// Authenticate wraps next with HTTP basic authentication. Without users
// (full or read-only) it returns next unchanged. Open paths (IsOpenPath)
// and exempt requests pass; a request without valid credentials gets 401
// with a Basic challenge; a read-only user trying anything but GET or
// HEAD gets 403. Passwords are compared in constant time over every
// configured user, so timing reveals neither which user exists nor how
// much of a password matched.
func Authenticate(cfg AuthConfig, next http.Handler) http.Handler {
	if len(cfg.Users) == 0 && len(cfg.ReadOnly) == 0 {
		return next
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if cfg.Exempt == nil {
		cfg.Exempt = IsAgentPath
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	hash := func(cs []Credential) []hashedCred {
		out := make([]hashedCred, len(cs))
		for i, c := range cs {
			out[i] = hashedCred{sha256.Sum256([]byte(c.User)), sha256.Sum256([]byte(c.Password))}
		}
		return out
	}
	a := &authenticator{
		full: hash(cfg.Users), ro: hash(cfg.ReadOnly),
		challenge: `Basic realm="` + strings.ReplaceAll(cfg.Realm, `"`, "") + `", charset="UTF-8"`,
		exempt:    cfg.Exempt, log: cfg.Logger, next: next,
		budget: &logBudget{tokens: logBurst, burst: logBurst, perSecond: logPerSecond, now: time.Now},
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marathon_http_auth_rejections_total", Help: "API requests rejected by authentication, by reason.",
		}, []string{"reason"}),
	}
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(a.rejections); err != nil {
			a.log.Warn("register auth metric", "err", err)
		}
	}
	return a
}

// warn logs a rejection within the log budget.
func (a *authenticator) warn(msg string, args ...any) {
	ok, dropped := a.budget.take()
	if !ok {
		return
	}
	if dropped > 0 {
		args = append(args, "suppressed", dropped)
	}
	a.log.Warn(msg, args...)
}

// logBudget is a token bucket for log lines that counts what it drops.
type logBudget struct {
	mu               sync.Mutex
	tokens           float64
	burst, perSecond float64
	last             time.Time
	dropped          int
	now              func() time.Time
}

// take reports whether a line may be logged and, if so, how many were
// dropped since the last one.
func (b *logBudget) take() (bool, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.perSecond)
	}
	b.last = now
	if b.tokens < 1 {
		b.dropped++
		return false, 0
	}
	b.tokens--
	d := b.dropped
	b.dropped = 0
	return true, d
}

func (a *authenticator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.exempt(r) || IsOpenPath(r) {
		a.next.ServeHTTP(w, r)
		return
	}
	user, pass, ok := ParseBasic(r.Header.Get("Authorization"))
	rl := roleNone
	if ok {
		rl = a.check(user, pass)
	}
	switch {
	case rl == roleFull:
		a.next.ServeHTTP(w, r)
	case rl == roleReadOnly && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		a.next.ServeHTTP(w, r)
	case rl == roleReadOnly:
		a.rejections.WithLabelValues("read_only").Inc()
		a.warn("api request denied: read-only user", "user", user, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		writeMessage(w, http.StatusForbidden, "Forbidden: user '"+user+"' may only read")
	default:
		reason, label := "no credentials", "no_credentials"
		if ok {
			reason, label = "bad user or password", "bad_credentials"
		} else if r.Header.Get("Authorization") != "" {
			reason, label = "malformed Authorization header", "malformed"
		}
		a.rejections.WithLabelValues(label).Inc()
		a.warn("api authentication failed", "reason", reason, "user", user, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", a.challenge)
		writeMessage(w, http.StatusUnauthorized, "Unauthorized: invalid or missing credentials")
	}
}

// check returns the role of user:pass. It compares against every
// credential without stopping early.
func (a *authenticator) check(user, pass string) role {
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	full, ro := 0, 0
	for _, c := range a.full {
		full |= subtle.ConstantTimeCompare(u[:], c.user[:]) & subtle.ConstantTimeCompare(p[:], c.pass[:])
	}
	for _, c := range a.ro {
		ro |= subtle.ConstantTimeCompare(u[:], c.user[:]) & subtle.ConstantTimeCompare(p[:], c.pass[:])
	}
	switch {
	case full == 1:
		return roleFull
	case ro == 1:
		return roleReadOnly
	}
	return roleNone
}

// ParseBasic parses an Authorization header of the Basic scheme (RFC
// 7617): the scheme name in any case, one or more spaces, then standard
// base64 of "user:password" (the user ends at the first colon). It
// reports false for any other scheme or a malformed value.
func ParseBasic(header string) (user, pass string, ok bool) {
	scheme, rest, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	rest = strings.TrimLeft(rest, " ")
	if rest == "" || len(rest) > 4096 {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", "", false
	}
	user, pass, found = strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	return user, pass, true
}
