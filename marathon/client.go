package marathon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults applied by NewClient to zero ClientConfig fields.
const (
	// DefaultTimeout bounds each REST request.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxEventSize is the largest SSE event accepted (4 MiB).
	DefaultMaxEventSize = 4 << 20
)

// maxAppsBody bounds the size of a /v2/apps body we are willing to read
// (10,000 apps with tasks are well under 100 MiB).
const maxAppsBody = 512 << 20

// appsPath is the snapshot request: tasks, deployments and readiness
// embedded, as marathon-lb asks for them.
const appsPath = "/v2/apps?embed=apps.tasks&embed=apps.deployments&embed=apps.readiness"

// ClientConfig configures a Client.
type ClientConfig struct {
	// URLs are one or more Marathon base URLs (e.g. http://m1:8080), tried
	// in order; the client sticks to the one that answered last.
	URLs []string
	// Username and Password, when Username is set, are sent as HTTP basic
	// auth (--auth-credentials user:pass or --marathon-auth-credential-file).
	Username, Password string
	// CACertFile is a PEM CA bundle trusted (besides the system pool) for
	// https Marathon URLs (--marathon-ca-cert).
	CACertFile string
	// Timeout bounds each REST request; default DefaultTimeout. It is never
	// applied to the event stream, whose only deadline is the idle timeout.
	Timeout time.Duration
	// MaxEventSize is the largest SSE event accepted, in bytes; default
	// DefaultMaxEventSize. Larger events are dropped (and logged), the
	// stream goes on. r3labs/sse's own default of 64 KiB is too small for an
	// api_post_event carrying a big app definition.
	MaxEventSize int
	// MaxBackoff caps the delay between event stream reconnects (which
	// grows from 500 ms, doubling, with jitter); default 30 s
	// (--max-backoff).
	MaxBackoff time.Duration
	// Logger receives Warn lines for skipped input and Info lines for
	// stream (re)connections; nil discards.
	Logger *slog.Logger
}

// Client talks to Marathon's REST API and event stream. It is safe for
// concurrent use; it holds no goroutines of its own outside Events.
type Client struct {
	urls            []*url.URL
	user, pass      string
	timeout         time.Duration
	maxEventSize    int
	log             *slog.Logger
	transport       *http.Transport // REST
	streamTransport *http.Transport // event stream: same TLS, header timeout
	rest            *http.Client
	current         atomic.Int64 // index into urls of the member that answered last

	// Stream tuning; the defaults are set by NewClient and only tests in
	// this package change them.
	backoffBase  time.Duration // first reconnect delay
	backoffCap   time.Duration // longest reconnect delay
	healthyAfter time.Duration // a connection that lived this long resets the backoff
	idleTimeout  time.Duration // no byte for this long ⇒ reconnect
}

// StatusError is returned when Marathon answers with an unexpected HTTP
// status. Message is Marathon's error message when the body carried one.
type StatusError struct {
	URL     string
	Code    int
	Message string
}

// Error implements error.
func (e *StatusError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("GET %s: status %d: %s", e.URL, e.Code, e.Message)
	}
	return fmt.Sprintf("GET %s: status %d", e.URL, e.Code)
}

// NewClient checks cfg and returns a Client. It fails when no URL is given,
// a URL is not an absolute http(s) URL, or the CA file cannot be used.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("marathon client: no Marathon URL given")
	}
	c := &Client{
		user:         cfg.Username,
		pass:         cfg.Password,
		timeout:      cfg.Timeout,
		maxEventSize: cfg.MaxEventSize,
		log:          cfg.Logger,
		backoffBase:  500 * time.Millisecond,
		backoffCap:   30 * time.Second,
		healthyAfter: 10 * time.Second,
		idleTimeout:  5 * time.Minute,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if cfg.MaxBackoff > 0 {
		c.backoffCap = max(cfg.MaxBackoff, c.backoffBase)
	}
	if c.maxEventSize <= 0 {
		c.maxEventSize = DefaultMaxEventSize
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for _, raw := range cfg.URLs {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("marathon client: URL %q: %w", raw, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("marathon client: URL %q: want http(s)://host[:port]", u.Redacted())
		}
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawQuery, u.Fragment = "", ""
		c.urls = append(c.urls, u)
	}
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("marathon client: http.DefaultTransport is not an *http.Transport")
	}
	c.transport = base.Clone()
	if cfg.CACertFile != "" {
		pool, err := loadCAPool(cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("marathon client: %w", err)
		}
		c.transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.rest = &http.Client{Transport: c.transport, Timeout: c.timeout}
	c.streamTransport = c.transport.Clone()
	// The stream has no overall timeout, but a member that accepts the
	// connection and never answers must not hold us for the idle timeout.
	c.streamTransport.ResponseHeaderTimeout = c.timeout
	return c, nil
}

// loadCAPool returns the system pool plus the certificates of a PEM file.
func loadCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", path)
	}
	return pool, nil
}

// ParseCredentials splits "user:password" at the first colon. The password
// may contain colons; the user may not be empty. The error never repeats
// the input, which is a secret.
func ParseCredentials(s string) (user, pass string, err error) {
	user, pass, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", errors.New("credentials: want user:password, no colon found")
	}
	if user == "" {
		return "", "", errors.New("credentials: want user:password, user is empty")
	}
	return user, pass, nil
}

// ReadCredentialFile reads a file holding "user:password" (surrounding
// whitespace, such as a final newline, is trimmed) and parses it with
// ParseCredentials.
func ReadCredentialFile(path string) (user, pass string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("read credential file: %w", err)
	}
	user, pass, err = ParseCredentials(strings.TrimSpace(string(b)))
	if err != nil {
		return "", "", fmt.Errorf("credential file %s: %w", path, err)
	}
	return user, pass, nil
}

// URL returns the base URL of the member the client currently sticks to,
// with any password redacted (for logs and status pages).
func (c *Client) URL() string {
	return c.urls[c.index()].Redacted()
}

func (c *Client) index() int {
	return int(c.current.Load()) % len(c.urls)
}

// endpoint joins base URL number i and a path that may carry a query.
func (c *Client) endpoint(i int, pathAndQuery string) string {
	u := *c.urls[i]
	u.User = nil // sent as an Authorization header instead
	return u.String() + pathAndQuery
}

// newRequest builds a GET for member i with the headers every call sends.
func (c *Client) newRequest(ctx context.Context, i int, pathAndQuery, accept string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(i, pathAndQuery), nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "switchyard")
	if user, pass, ok := c.credentials(i); ok {
		req.SetBasicAuth(user, pass)
	}
	return req, nil
}

// credentials returns the basic-auth pair for member i: the configured one,
// else user info embedded in that URL.
func (c *Client) credentials(i int) (user, pass string, ok bool) {
	if c.user != "" {
		return c.user, c.pass, true
	}
	if ui := c.urls[i].User; ui != nil {
		pass, _ := ui.Password()
		return ui.Username(), pass, true
	}
	return "", "", false
}

// Apps returns every app with its tasks, deployments and readiness results
// (GET /v2/apps?embed=apps.tasks&embed=apps.deployments&embed=apps.readiness).
// It asks the current member first and, on any failure (network error,
// non-200 status, undecodable body), each other member in turn, then sticks
// to the one that answered. A body that DecodeApps rejects is an error:
// Apps never returns a partial list.
func (c *Client) Apps(ctx context.Context) ([]App, error) {
	start := c.index()
	errs := make([]error, 0, len(c.urls))
	for k := range c.urls {
		i := (start + k) % len(c.urls)
		apps, err := c.appsFrom(ctx, i)
		if err == nil {
			c.current.Store(int64(i))
			return apps, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("get apps: %w", ctx.Err())
		}
		c.log.Warn("marathon member failed", "url", c.urls[i].Redacted(), "err", err)
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("get apps: all %d Marathon URLs failed: %w", len(c.urls), errors.Join(errs...))
}

func (c *Client) appsFrom(ctx context.Context, i int) ([]App, error) {
	req, err := c.newRequest(ctx, i, appsPath, "application/json")
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json") // as marathon-lb sends it
	resp, err := c.rest.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", c.urls[i].Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(c.urls[i].Redacted()+"/v2/apps", resp)
	}
	// Decoded as it streams in: at 5,000 apps the body is ~12 MB that
	// would otherwise sit in memory next to the decoded apps.
	body := &countingReader{r: io.LimitReader(resp.Body, maxAppsBody+1)}
	apps, err := DecodeAppsFrom(body)
	if body.n > maxAppsBody {
		return nil, fmt.Errorf("GET %s/v2/apps: body larger than %d bytes", c.urls[i].Redacted(), maxAppsBody)
	}
	if err != nil {
		return nil, fmt.Errorf("GET %s/v2/apps: %w", c.urls[i].Redacted(), err)
	}
	return apps, nil
}

// statusError builds a *StatusError from a non-2xx response, reading
// Marathon's {"message": ...} when there is one. It does not close the body.
func statusError(where string, resp *http.Response) error {
	e := &StatusError{URL: where, Code: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var msg ErrorResponse
	if json.Unmarshal(b, &msg) == nil {
		e.Message = msg.Message
	}
	return e
}

// Ping GETs /ping on the current member and reports whether it answered 2xx.
func (c *Client) Ping(ctx context.Context) error {
	i := c.index()
	req, err := c.newRequest(ctx, i, "/ping", "text/plain")
	if err != nil {
		return err
	}
	resp, err := c.rest.Do(req)
	if err != nil {
		return fmt.Errorf("ping %s: %w", c.urls[i].Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return statusError(c.urls[i].Redacted()+"/ping", resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
