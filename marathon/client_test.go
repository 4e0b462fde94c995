package marathon_test

import (
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

func newClient(t *testing.T, cfg marathon.ClientConfig) *marathon.Client {
	t.Helper()
	c, err := marathon.NewClient(cfg)
	require.NoError(t, err)
	return c
}

func TestParseCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, user, pass string
		wantErr        bool
	}{
		{in: "admin:secret", user: "admin", pass: "secret"},
		{in: "admin:se:cr:et", user: "admin", pass: "se:cr:et"},
		{in: "admin:", user: "admin", pass: ""},
		{in: "admin", wantErr: true},
		{in: ":secret", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			user, pass, err := marathon.ParseCredentials(tt.in)
			if tt.wantErr {
				require.Error(t, err, "input %q", tt.in)
				assert.NotContains(t, err.Error(), tt.in+"x", "error must not echo the secret")
				return
			}
			require.NoError(t, err, "input %q", tt.in)
			assert.Equal(t, [2]string{tt.user, tt.pass}, [2]string{user, pass}, "input %q", tt.in)
		})
	}
}

func TestReadCredentialFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	require.NoError(t, os.WriteFile(good, []byte("  lb:p@ss:word\n"), 0o600))
	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("topsecret\n"), 0o600))

	user, pass, err := marathon.ReadCredentialFile(good)
	require.NoError(t, err)
	assert.Equal(t, [2]string{"lb", "p@ss:word"}, [2]string{user, pass})

	_, _, err = marathon.ReadCredentialFile(bad)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "topsecret", "error must not echo the file's content")

	_, _, err = marathon.ReadCredentialFile(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestNewClientErrors(t *testing.T) {
	t.Parallel()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, []byte("not a certificate"), 0o600))
	tests := []struct {
		name string
		cfg  marathon.ClientConfig
	}{
		{name: "no URL", cfg: marathon.ClientConfig{}},
		{name: "relative URL", cfg: marathon.ClientConfig{URLs: []string{"marathon:8080"}}},
		{name: "bad scheme", cfg: marathon.ClientConfig{URLs: []string{"ftp://marathon:8080"}}},
		{name: "unparsable URL", cfg: marathon.ClientConfig{URLs: []string{"http://[::1"}}},
		{name: "missing CA file", cfg: marathon.ClientConfig{URLs: []string{"https://m"}, CACertFile: caFile + ".missing"}},
		{name: "CA file without PEM", cfg: marathon.ClientConfig{URLs: []string{"https://m"}, CACertFile: caFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := marathon.NewClient(tt.cfg)
			require.Error(t, err, "config %+v", tt.cfg)
			assert.Nil(t, c)
		})
	}
}

func TestAppsFailoverAndStickiness(t *testing.T) {
	t.Parallel()
	down := marathontest.New(t)
	down.SetDown(true)
	up := marathontest.New(t)
	up.SetApps([]marathon.App{marathontest.App("/web", marathontest.WithServicePorts(10000), marathontest.WithTask("10.0.0.1", 31000))})
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // connection refused

	c := newClient(t, marathon.ClientConfig{URLs: []string{closed.URL, down.URL, up.URL}})
	apps, err := c.Apps(t.Context())
	require.NoError(t, err)
	assert.Equal(t, up.Apps(), apps)
	assert.Equal(t, 1, down.AppsRequests(), "the 503 member was tried")
	assert.Equal(t, 1, up.AppsRequests())
	assert.Equal(t, up.URL, c.URL(), "sticks to the member that answered")

	_, err = c.Apps(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, down.AppsRequests(), "the next call goes straight to the sticky member")
	assert.Equal(t, 2, up.AppsRequests())
	require.NoError(t, c.Ping(t.Context()))

	// When the sticky member fails, the others are tried again.
	up.SetDown(true)
	down.SetDown(false)
	down.SetApps(nil)
	apps, err = c.Apps(t.Context())
	require.NoError(t, err)
	assert.Empty(t, apps)
	assert.Equal(t, down.URL, c.URL())
}

func TestAppsAllDown(t *testing.T) {
	t.Parallel()
	a, b := marathontest.New(t), marathontest.New(t)
	a.SetDown(true)
	b.SetDown(true)
	c := newClient(t, marathon.ClientConfig{URLs: []string{a.URL, b.URL}})
	apps, err := c.Apps(t.Context())
	require.Error(t, err)
	assert.Nil(t, apps)
	var se *marathon.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusServiceUnavailable, se.Code)
	assert.Equal(t, 1, a.AppsRequests())
	assert.Equal(t, 1, b.AppsRequests())
	require.Error(t, c.Ping(t.Context()))
}

func TestAppsRequest(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		got *http.Request
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Clone(r.Context())
		mu.Unlock()
		_, _ = w.Write([]byte(`{"apps":[{"id":"/a"}]}`))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, marathon.ClientConfig{URLs: []string{srv.URL + "/"}, Username: "lb", Password: "s3cret"})
	apps, err := c.Apps(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []marathon.App{{ID: "/a"}}, apps)

	mu.Lock()
	defer mu.Unlock()
	require.NotNil(t, got)
	assert.Equal(t, "/v2/apps", got.URL.Path)
	assert.Equal(t, url.Values{"embed": {"apps.tasks", "apps.deployments", "apps.readiness"}}, got.URL.Query())
	assert.Equal(t, "application/json", got.Header.Get("Accept"))
	user, pass, ok := got.BasicAuth()
	assert.True(t, ok, "basic auth header sent")
	assert.Equal(t, [2]string{"lb", "s3cret"}, [2]string{user, pass})
}

func TestAppsBasicAuthEnforced(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	m.SetBasicAuth("lb", "pw")
	m.SetApps([]marathon.App{marathontest.App("/a")})

	anon := newClient(t, marathon.ClientConfig{URLs: []string{m.URL}})
	_, err := anon.Apps(t.Context())
	var se *marathon.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusUnauthorized, se.Code)
	assert.Equal(t, "Invalid username or password.", se.Message)

	authed := newClient(t, marathon.ClientConfig{URLs: []string{m.URL}, Username: "lb", Password: "pw"})
	apps, err := authed.Apps(t.Context())
	require.NoError(t, err)
	assert.Equal(t, m.Apps(), apps)

	// Credentials in the URL work too, and never show in URL().
	u, err := url.Parse(m.URL)
	require.NoError(t, err)
	u.User = url.UserPassword("lb", "pw")
	inURL := newClient(t, marathon.ClientConfig{URLs: []string{u.String()}})
	_, err = inURL.Apps(t.Context())
	require.NoError(t, err)
	assert.NotContains(t, inURL.URL(), "pw")
}

func TestAppsBadBodyNeverPartial(t *testing.T) {
	t.Parallel()
	bodies := map[string]string{
		"html":      "<html>oops</html>",
		"truncated": `{"apps":[{"id":"/a"},{"id":"/b"`,
		"no apps":   `{"message":"hi"}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(body))
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, marathon.ClientConfig{URLs: []string{srv.URL}})
			apps, err := c.Apps(t.Context())
			require.ErrorIs(t, err, marathon.ErrInvalidJSON, "body %q", body)
			assert.Nil(t, apps, "body %q", body)
		})
	}
}

func TestAppsHTTPSWithCACert(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"apps":[]}`))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	require.NoError(t, os.WriteFile(caFile, pemBytes, 0o600))

	untrusting := newClient(t, marathon.ClientConfig{URLs: []string{srv.URL}})
	_, err := untrusting.Apps(t.Context())
	require.Error(t, err, "an unknown CA must be refused")

	trusting := newClient(t, marathon.ClientConfig{URLs: []string{srv.URL}, CACertFile: caFile})
	apps, err := trusting.Apps(t.Context())
	require.NoError(t, err)
	assert.Empty(t, apps)
}
