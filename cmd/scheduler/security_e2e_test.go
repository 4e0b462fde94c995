package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon/marathontest/tlstest"
)

// logSink collects the scheduler's log lines.
type logSink struct {
	mu sync.Mutex
	sb strings.Builder
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.String()
}

// waitLog waits until the log has a line containing all of parts.
func (l *logSink) waitLog(t *testing.T, parts ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, line := range strings.Split(l.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "no log line with %q in:\n%s", parts, l.String())
}

type secScheduler struct {
	base   string // URL the tests use
	client *http.Client
	logs   *logSink
	err    chan error
}

// startSecScheduler runs the CLI with args until the test ends; the tests
// reach it at scheme://host with client. It returns once /ping answers.
func startSecScheduler(t *testing.T, client *http.Client, scheme, host string, args ...string) *secScheduler {
	t.Helper()
	s := &secScheduler{logs: &logSink{}, err: make(chan error, 1), client: client}
	app := newApp()
	app.ErrWriter = s.logs
	ctx, cancel := context.WithCancel(context.Background())
	args = withStateFlag(args)
	go func() { s.err <- app.RunContext(ctx, append([]string{"scheduler"}, args...)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-s.err:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("scheduler did not stop")
		}
	})
	s.base = scheme + "://" + host
	require.Eventually(t, func() bool {
		resp, err := s.client.Get(s.base + "/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "scheduler did not come up:\n%s", s.logs.String())
	return s
}

func (s *secScheduler) do(t *testing.T, method, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

func basicAuth(user, pass string) []string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return []string{"Authorization", req.Header.Get("Authorization")}
}

func freePort(t *testing.T) int {
	t.Helper()
	_, p, err := net.SplitHostPort(freeAddr(t))
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

// attack is one hostile or unusual request and what must come of it.
type attack struct {
	name, method, path, body string
	hdr                      []string
	want                     int
	log                      []string // parts of one log line, nil: none required
}

// limitAttacks hold with or without authentication (hdr is added).
func limitAttacks(hdr []string) []attack {
	return []attack{
		{"body over the limit", "POST", "/v2/apps", `{"id":"big","cmd":"sleep 1","labels":{"x":"` + strings.Repeat("a", 4<<20) + `"}}`, hdr, 413, nil},
		{"trailing garbage", "POST", "/v2/apps", `{"id":"junk","cmd":"sleep 1"} {"id":"other"}`, hdr, 400, nil},
		{"dot-dot in app id", "POST", "/v2/apps", `{"id":"/team/../admin","cmd":"sleep 1"}`, hdr, 422, nil},
		{"dot-dot in path", "DELETE", "/v2/apps/team/%2e%2e/admin", "", hdr, 422, nil},
		{"cmd over the kernel limit", "POST", "/v2/apps", `{"id":"huge","cmd":"` + strings.Repeat("x", 200<<10) + `"}`, hdr, 422, nil},
		{"args over the kernel's total", "POST", "/v2/apps", `{"id":"huge","args":["` + strings.Repeat(strings.Repeat("y", 100<<10)+`","`, 25) + `end"]}`, hdr, 422, nil},
	}
}

func runAttacks(t *testing.T, s *secScheduler, attacks []attack) {
	t.Helper()
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			code, h, body := s.do(t, a.method, a.path, a.body, a.hdr...)
			assert.Equal(t, a.want, code, body)
			if strings.HasPrefix(s.base, "https:") && code == http.StatusOK {
				assert.True(t, strings.HasPrefix(h.Get("X-Marathon-Leader"), "https://"), h.Get("X-Marathon-Leader"))
			}
			if a.want == http.StatusUnauthorized {
				assert.Equal(t, `Basic realm="Switchyard", charset="UTF-8"`, h.Get("WWW-Authenticate"))
			}
			if a.log != nil {
				s.logs.waitLog(t, a.log...)
			}
		})
	}
}

// TestSecurityE2E attacks a scheduler started with credentials and TLS on,
// then one started with the defaults.
func TestSecurityE2E(t *testing.T) {
	dir := t.TempDir()
	cert := tlstest.SelfSigned(t, dir, "scheduler")
	users := filepath.Join(dir, "users")
	require.NoError(t, os.WriteFile(users, []byte("# operators\nops:file-pass\n"), 0o600))
	httpsPort, httpPort := freePort(t), freePort(t)

	t.Run("auth and TLS", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}
		s := startSecScheduler(t, client, "https", fmt.Sprintf("127.0.0.1:%d", httpsPort),
			"--http-address", fmt.Sprintf("127.0.0.1:%d", httpPort), "--disable-http",
			"--https-port", strconv.Itoa(httpsPort), "--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile,
			"--http-credentials", "admin:s3cret", "--http-credentials-file", users,
			"--http-credentials-readonly", "lb:ro-pass", "--http-realm", "Switchyard", "--data-dir", filepath.Join(dir, "data"),
			"--max-event-streams", "2", "--http-read-timeout", "2s", "--max-body-bytes", "3145728")
		admin, ops, lb := basicAuth("admin", "s3cret"), basicAuth("ops", "file-pass"), basicAuth("lb", "ro-pass")
		app := `{"id":"/web","cmd":"sleep 1000","instances":0}`
		attacks := []attack{
			{"list apps without credentials", "GET", "/v2/apps", "", nil, 401, []string{"api authentication failed", `reason="no credentials"`, "path=/v2/apps"}},
			{"create app without credentials", "POST", "/v2/apps", app, nil, 401, []string{"api authentication failed", "method=POST"}},
			{"wrong password", "POST", "/v2/apps", app, basicAuth("admin", "guess"), 401, []string{"api authentication failed", `reason="bad user or password"`, "user=admin"}},
			{"unknown user", "GET", "/v2/info", "", basicAuth("root", "s3cret"), 401, []string{"api authentication failed", "user=root"}},
			{"garbage Authorization", "GET", "/v2/apps", "", []string{"Authorization", "Basic %%%"}, 401, []string{"malformed Authorization header"}},
			{"bearer token", "GET", "/v2/apps", "", []string{"Authorization", "Bearer x"}, 401, nil},
			{"read app definitions", "GET", "/v2/apps/web/versions", "", nil, 401, nil},
			{"metrics", "GET", "/metrics", "", nil, 401, nil},
			{"abdicate without credentials", "DELETE", "/v2/leader", "", nil, 401, []string{"api authentication failed", "method=DELETE", "path=/v2/leader"}},
			{"read-only user writes", "POST", "/v2/apps", app, lb, 403, []string{"api request denied: read-only user", "user=lb"}},
			{"read-only user kills tasks", "POST", "/v2/tasks/delete", `{"ids":[]}`, lb, 403, []string{"read-only user"}},
			{"ping stays open", "GET", "/ping", "", nil, 200, nil},
			{"leader stays open", "GET", "/v2/leader", "", nil, 200, nil},
			{"admin creates", "POST", "/v2/apps", app, admin, 201, nil},
			{"file user reads", "GET", "/v2/apps/web", "", ops, 200, nil},
			{"read-only user reads", "GET", "/v2/apps", "", lb, 200, nil},
			// The agent API is not behind the users' basic auth: agents
			// authenticate with the agent side's own mechanism.
			{"agent API is not basic-auth'd", "GET", "/agentapi/v1/assignments?agentId=nobody&wait=0s", "", nil, 404, nil},
		}
		attacks = append(attacks, limitAttacks(admin)...)
		runAttacks(t, s, attacks)

		t.Run("plain HTTP is off", func(t *testing.T) {
			_, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ping", httpPort))
			var op *net.OpError
			require.ErrorAs(t, err, &op)
			assert.ErrorContains(t, err, "refused")
			// Plain HTTP to the HTTPS port never reaches the API.
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v2/apps", httpsPort))
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		})
		t.Run("untrusted certificate", func(t *testing.T) {
			_, err := http.Get(s.base + "/ping")
			var uerr *tls.CertificateVerificationError
			assert.ErrorAs(t, err, &uerr)
		})
		t.Run("slow body is cut", func(t *testing.T) {
			conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpsPort), &tls.Config{RootCAs: cert.Pool})
			require.NoError(t, err)
			defer conn.Close()
			_, err = fmt.Fprintf(conn, "POST /v2/apps HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: 1000\r\n\r\n{\"id\":", admin[1])
			require.NoError(t, err)
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second))) // safety net
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		})
		t.Run("event stream cap", func(t *testing.T) {
			open := func() *http.Response {
				req, _ := http.NewRequest("GET", s.base+"/v2/events", nil)
				req.Header.Set("Accept", "text/event-stream")
				req.Header.Set(lb[0], lb[1])
				resp, err := s.client.Do(req)
				require.NoError(t, err)
				return resp
			}
			a, b := open(), open()
			defer a.Body.Close()
			defer b.Body.Close()
			require.Equal(t, 200, a.StatusCode)
			require.Equal(t, 200, b.StatusCode)
			c := open()
			c.Body.Close()
			assert.Equal(t, http.StatusServiceUnavailable, c.StatusCode)
			s.logs.waitLog(t, "event stream refused: too many open streams", "limit=2")
		})
		t.Run("abdicate with credentials restarts leadership in place", func(t *testing.T) {
			code, _, body := s.do(t, "DELETE", "/v2/leader", "", admin...)
			require.Equal(t, 200, code, body)
			s.logs.waitLog(t, "takes leadership again in place")
			require.Eventually(t, func() bool {
				code, _, _ := s.do(t, "GET", "/v2/apps/web", "", admin...)
				return code == 200
			}, 20*time.Second, 20*time.Millisecond)
		})
	})

	t.Run("defaults refuse a network address without credentials", func(t *testing.T) {
		logs := &logSink{}
		app := newApp()
		app.ErrWriter = logs
		err := app.Run([]string{"scheduler", "--http-address", fmt.Sprintf(":%d", freePort(t))})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "--insecure-no-auth")
		logs.waitLog(t, "level=ERROR", "refusing to start: the API would be open to the network without authentication")

		err = app.Run([]string{"scheduler", "--http-address", "0.0.0.0", "--disable-http"})
		assert.ErrorContains(t, err, "--disable-http needs --tls-cert")
	})

	t.Run("insecure-no-auth says so", func(t *testing.T) {
		port := freePort(t)
		s := startSecScheduler(t, &http.Client{}, "http", fmt.Sprintf("127.0.0.1:%d", port), "--http-address", fmt.Sprintf("0.0.0.0:%d", port), "--insecure-no-auth")
		s.logs.waitLog(t, "level=WARN", "API without authentication open to the network (--insecure-no-auth)")
	})

	t.Run("defaults on loopback", func(t *testing.T) {
		port := freePort(t)
		s := startSecScheduler(t, &http.Client{}, "http", fmt.Sprintf("127.0.0.1:%d", port), "--http-addr", fmt.Sprintf("127.0.0.1:%d", port),
			"--max-body-bytes", "3145728")
		s.logs.waitLog(t, "API without authentication, reachable from this machine only")
		attacks := []attack{
			{"list apps", "GET", "/v2/apps", "", nil, 200, nil},
			{"create app", "POST", "/v2/apps", `{"id":"/web","cmd":"sleep 1000","instances":0}`, nil, 201, nil},
			{"garbage Authorization is ignored", "GET", "/v2/apps", "", []string{"Authorization", "Basic %%%"}, 200, nil},
		}
		attacks = append(attacks, limitAttacks(nil)...)
		runAttacks(t, s, attacks)
		// No data dir: abdication keeps the (memory) state, and says why.
		code, _, _ := s.do(t, "DELETE", "/v2/leader", "")
		assert.Equal(t, 200, code)
		s.logs.waitLog(t, "leadership kept: the state is in memory only")
		code, _, _ = s.do(t, "GET", "/v2/apps/web", "")
		assert.Equal(t, 200, code)
	})
}
