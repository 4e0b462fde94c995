package agentapi_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logBuf collects log lines for assertions; safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// do sends one request straight to h from remote, with headers.
func do(h http.Handler, method, path, body, remote string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = remote
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestClusterSecret(t *testing.T) {
	var logs logBuf
	f := newFake()
	h := agentapi.NewHandler(f, agentapi.HandlerConfig{Secrets: []string{"old-secret", "", "s3cret"}, Logger: logs.logger()})
	reg := `{"hostname":"rogue"}`
	tests := []struct {
		name string
		auth string
		code int
	}{
		{"no credentials", "", http.StatusUnauthorized},
		{"wrong secret", "Bearer guess", http.StatusUnauthorized},
		{"not bearer", "Basic czNjcmV0", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"secret", "Bearer s3cret", http.StatusOK},
		{"secret being rotated out", "bearer old-secret", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.auth != "" {
				hdr["Authorization"] = tt.auth
			}
			// A remote peer: the secret is needed even from loopback, so
			// use both.
			for _, remote := range []string{"10.1.2.3:4000", "127.0.0.1:4000"} {
				rec := do(h, "POST", agentapi.PathRegister, reg, remote, hdr)
				assert.Equal(t, tt.code, rec.Code, "from %s: %s", remote, rec.Body)
				if tt.code == http.StatusUnauthorized {
					assert.Equal(t, `Bearer realm="switchyard-agents"`, rec.Header().Get("WWW-Authenticate"))
				}
			}
		})
	}
	assert.Contains(t, logs.String(), "agent API request refused: missing or wrong cluster secret")
	assert.Contains(t, logs.String(), "remote=10.1.2.3:4000")
	// Every endpoint wants the secret, not only registration.
	assert.Equal(t, http.StatusUnauthorized, do(h, "GET", agentapi.PathAssignments+"?agentId=agent-1", "", "10.1.2.3:1", nil).Code)
	assert.Equal(t, http.StatusUnauthorized, do(h, "POST", agentapi.PathStatus, `{"agentId":"agent-1","statuses":[]}`, "10.1.2.3:1", nil).Code)
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Empty(t, f.reports, "no status got through without the secret")
}

func TestNoSecretAdmitsOnlyLoopbackPeers(t *testing.T) {
	tests := []struct {
		name      string
		anonymous bool
		remote    string
		code      int
	}{
		{"loopback v4", false, "127.0.0.1:5000", http.StatusOK},
		{"loopback v6", false, "[::1]:5000", http.StatusOK},
		{"remote peer refused", false, "192.0.2.7:5000", http.StatusForbidden},
		{"remote peer with insecure flag", true, "192.0.2.7:5000", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuf
			h := agentapi.NewHandler(newFake(), agentapi.HandlerConfig{AllowAnonymous: tt.anonymous, Logger: logs.logger()})
			rec := do(h, "POST", agentapi.PathRegister, `{"hostname":"n"}`, tt.remote, nil)
			assert.Equal(t, tt.code, rec.Code, rec.Body.String())
			if tt.code == http.StatusForbidden {
				assert.Contains(t, rec.Body.String(), "no agent secret configured")
				assert.Contains(t, logs.String(), "only agents on the scheduler's host may connect")
			} else {
				assert.Empty(t, logs.String())
			}
		})
	}
}

func TestClientSendsCredentials(t *testing.T) {
	f := newFake()
	var logs logBuf
	srv := httptest.NewServer(agentapi.NewHandler(f, agentapi.HandlerConfig{Secrets: []string{"s3cret"}, Logger: logs.logger()}))
	t.Cleanup(srv.Close)

	c := agentapi.NewClient(srv.URL, srv.Client(), agentapi.WithSecret("s3cret"))
	reg, err := c.Register(t.Context(), agentapi.RegisterRequest{Hostname: "n"})
	require.NoError(t, err)
	assert.Equal(t, "tok-agent-1", reg.AgentToken)
	// The client keeps the token: polls and reports carry it.
	_, err = c.Assignments(t.Context(), reg.AgentID, 0, 0)
	require.NoError(t, err)
	require.NoError(t, c.ReportStatus(t.Context(), agentapi.StatusReport{AgentID: reg.AgentID,
		Statuses: []agentapi.TaskStatus{{TaskID: "web.1", State: marathon.TaskRunning}}}))
	// And re-registration under the same id presents it.
	_, err = c.Register(t.Context(), agentapi.RegisterRequest{AgentID: reg.AgentID, Hostname: "n"})
	require.NoError(t, err)

	// A client with the secret but not the agent's token is refused.
	other := agentapi.NewClient(srv.URL, srv.Client(), agentapi.WithSecret("s3cret"))
	_, err = other.Assignments(t.Context(), reg.AgentID, 0, 0)
	assert.ErrorIs(t, err, agentapi.ErrForbidden)
	err = other.ReportStatus(t.Context(), agentapi.StatusReport{AgentID: reg.AgentID,
		Statuses: []agentapi.TaskStatus{{TaskID: "web.1", State: marathon.TaskKilled}}})
	assert.ErrorIs(t, err, agentapi.ErrForbidden)
	_, err = other.Register(t.Context(), agentapi.RegisterRequest{AgentID: reg.AgentID, Hostname: "evil"})
	assert.ErrorIs(t, err, agentapi.ErrForbidden)

	// Without the secret nothing works.
	anon := agentapi.NewClient(srv.URL, srv.Client())
	_, err = anon.Register(t.Context(), agentapi.RegisterRequest{Hostname: "n"})
	var se *agentapi.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusUnauthorized, se.Code)

	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.reports, 1, "only the real agent's report arrived")
	assert.Equal(t, marathon.TaskRunning, f.reports[0].Statuses[0].State)
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), mode))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	var warned []string
	warn := func(m string) { warned = append(warned, m) }

	got, err := agentapi.ReadSecretFile(write("ok", "# cluster secret\n  new-one \n\nold-one\n", 0o600), warn)
	require.NoError(t, err)
	assert.Equal(t, []string{"new-one", "old-one"}, got)
	assert.Empty(t, warned)

	_, err = agentapi.ReadSecretFile(write("open", "s\n", 0o644), warn)
	require.NoError(t, err)
	require.Len(t, warned, 1)
	assert.Contains(t, warned[0], "readable by group or others")

	_, err = agentapi.ReadSecretFile(write("empty", "# nothing\n\n", 0o600), warn)
	assert.ErrorContains(t, err, "no secret in it")
	_, err = agentapi.ReadSecretFile(filepath.Join(dir, "missing"), warn)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestAgentTokens(t *testing.T) {
	a, b := agentapi.NewAgentToken(), agentapi.NewAgentToken()
	assert.Len(t, a, 64)
	assert.NotEqual(t, a, b)
	h := agentapi.HashAgentToken(a)
	assert.NotContains(t, h, a)
	assert.True(t, agentapi.AgentTokenMatches(h, a))
	assert.False(t, agentapi.AgentTokenMatches(h, b))
	assert.False(t, agentapi.AgentTokenMatches(h, ""))
	assert.False(t, agentapi.AgentTokenMatches("", ""))
}
