package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/httpapi"
	"github.com/switchyard/switchyard/marathon/marathontest/tlstest"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/server"
)

// startSecureScheduler runs our scheduler over HTTPS only, with an admin
// and a read-only user, until the test ends. It returns the HTTPS URL and
// the certificate clients must trust.
func startSecureScheduler(t *testing.T) (string, tlstest.Cert) {
	t.Helper()
	cert := tlstest.SelfSigned(t, t.TempDir(), "scheduler")
	tlsCfg, err := server.TLSConfig(cert.CertFile, cert.KeyFile, nil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{
			Scheduler:      scheduler.Config{Leader: ln.Addr().String()},
			EventKeepalive: 200 * time.Millisecond,
			Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
			Auth: httpapi.AuthConfig{
				Users:    []httpapi.Credential{{User: "admin", Password: "adm:in"}},
				ReadOnly: []httpapi.Credential{{User: "lb", Password: "ro-secret"}},
			},
		}, []server.Endpoint{{Listener: ln, TLS: tlsCfg}}, server.ServeOptions{Grace: time.Second})
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return "https://" + ln.Addr().String(), cert
}

// lbMarathonSource parses lb's command line as the real command does and
// returns the Marathon source the controller would use.
func lbMarathonSource(t *testing.T, args ...string) (*marathon.Client, error) {
	t.Helper()
	var got *settings
	app := newApp(io.Discard, io.Discard, func(string) string { return "" }, func(_ context.Context, s *settings, _, _ io.Writer) error {
		got = s
		return nil
	})
	require.NoError(t, app.Run(normalizeArgs(append([]string{"lb"}, args...))))
	require.NotNil(t, got)
	cfg, err := controllerConfig(got, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	c, ok := cfg.Marathon.(*marathon.Client)
	require.True(t, ok)
	return c, nil
}

// TestLBAgainstSchedulerWithAuthAndTLS: lb's --auth-credentials,
// --marathon-auth-credential-file and --marathon-ca-cert work against our
// scheduler with basic auth and HTTPS on, for the app list and the event
// stream; a read-only user is enough for lb.
func TestLBAgainstSchedulerWithAuthAndTLS(t *testing.T) {
	url, cert := startSecureScheduler(t)
	adminClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}
	create := func(id string) {
		req, err := http.NewRequest("POST", url+"/v2/apps", strings.NewReader(`{"id":"`+id+`","cmd":"sleep 100","instances":0,"labels":{"HAPROXY_GROUP":"external"}}`))
		require.NoError(t, err)
		req.SetBasicAuth("admin", "adm:in")
		resp, err := adminClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
	}
	create("/first")

	credFile := filepath.Join(t.TempDir(), "cred")
	require.NoError(t, os.WriteFile(credFile, []byte("lb:ro-secret\n"), 0o600))
	for name, args := range map[string][]string{
		"--auth-credentials":              {"--auth-credentials", "lb:ro-secret"},
		"--marathon-auth-credential-file": {"--marathon-auth-credential-file", credFile},
		"admin via --auth-credentials":    {"--auth-credentials", "admin:adm:in"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := lbMarathonSource(t, append([]string{"sse", "--marathon", url, "--marathon-ca-cert", cert.CAFile, "--group", "external"}, args...)...)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			apps, err := c.Apps(ctx)
			require.NoError(t, err)
			var ids []string
			for _, a := range apps {
				ids = append(ids, a.ID)
			}
			assert.Contains(t, ids, "/first")

			events := c.Events(ctx, nil)
			attached := false
			for ev := range events {
				if ev.Type == marathon.EventStreamAttached {
					attached = true
					break
				}
			}
			require.True(t, attached, "the stream attached")
			id := "/" + strings.NewReplacer("-", "", " ", "", ".", "", "/", "").Replace(strings.ToLower(name))
			create(id)
			for ev := range events {
				if ev.Type == "api_post_event" && bytes.Contains(ev.Data, []byte(`"`+id+`"`)) {
					return
				}
			}
			t.Fatalf("no api_post_event for %s on the stream: %v", id, ctx.Err())
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		c, err := lbMarathonSource(t, "sse", "--marathon", url, "--marathon-ca-cert", cert.CAFile, "--group", "external", "--auth-credentials", "lb:nope")
		require.NoError(t, err)
		_, err = c.Apps(context.Background())
		assert.ErrorContains(t, err, "401")
	})
	t.Run("no credentials", func(t *testing.T) {
		c, err := lbMarathonSource(t, "sse", "--marathon", url, "--marathon-ca-cert", cert.CAFile, "--group", "external")
		require.NoError(t, err)
		_, err = c.Apps(context.Background())
		assert.ErrorContains(t, err, "401")
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		c, err := lbMarathonSource(t, "sse", "--marathon", url, "--group", "external", "--auth-credentials", "lb:ro-secret")
		require.NoError(t, err)
		_, err = c.Apps(context.Background())
		var verr *tls.CertificateVerificationError
		assert.ErrorAs(t, err, &verr)
	})
}
