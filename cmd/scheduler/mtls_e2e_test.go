package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon/marathontest/tlstest"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// TestAgentClientCertE2E: with --agent-client-ca, an agent registers over
// HTTPS only with a client certificate from that CA (and the cluster
// secret); the users' API keeps answering clients without a certificate.
func TestAgentClientCertE2E(t *testing.T) {
	dir := t.TempDir()
	server := tlstest.SelfSigned(t, dir, "scheduler")
	ca := tlstest.NewCA(t, dir, "agents-ca")
	good := ca.Client(t, "agent1", "agent1", "agent1.example")
	stranger := tlstest.NewCA(t, dir, "other-ca").Client(t, "stranger", "agent1", "agent1.example")
	secretFile := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte("cluster-secret\n"), 0o600))
	httpsPort, httpPort := freePort(t), freePort(t)

	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: server.Pool}}}
	s := startSecScheduler(t, noCert, "https", fmt.Sprintf("127.0.0.1:%d", httpsPort),
		"--http-address", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--https-port", strconv.Itoa(httpsPort), "--tls-cert", server.CertFile, "--tls-key", server.KeyFile,
		"--http-credentials", "admin:s3cret", "--agent-secret-file", secretFile, "--agent-client-ca", ca.CertFile)

	withCert := func(c *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: server.Pool}
		if c != nil {
			// Sent whatever CAs the server names, as a hostile or
			// misconfigured agent would.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c, nil }
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	https := fmt.Sprintf("https://127.0.0.1:%d", httpsPort)
	tests := []struct {
		name     string
		base     string
		cert     *tls.Certificate
		secret   string
		wantCode int // 0: registered
		wantLog  []string
	}{
		{name: "certificate from the CA", base: https, cert: &good, secret: "cluster-secret"},
		{name: "no certificate", base: https, secret: "cluster-secret", wantCode: http.StatusUnauthorized,
			wantLog: []string{"agent API request refused: no client certificate", "tls=true"}},
		{name: "certificate from another CA", base: https, cert: &stranger, secret: "cluster-secret", wantCode: http.StatusForbidden,
			wantLog: []string{"agent API request refused: client certificate not accepted", "CN=agent1"}},
		{name: "plain HTTP", base: fmt.Sprintf("http://127.0.0.1:%d", httpPort), secret: "cluster-secret", wantCode: http.StatusUnauthorized,
			wantLog: []string{"agent API request refused: no client certificate", "tls=false"}},
		{name: "certificate but wrong secret", base: https, cert: &good, secret: "guess", wantCode: http.StatusUnauthorized,
			wantLog: []string{"wrong cluster secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := agentapi.NewClient(tt.base, withCert(tt.cert), agentapi.WithSecret(tt.secret))
			resp, err := c.Register(t.Context(), agentapi.RegisterRequest{Hostname: "agent1.example", Address: "127.0.0.1",
				Resources: agentapi.Resources{CPUs: 1, Mem: 128}})
			if tt.wantCode == 0 {
				require.NoError(t, err)
				assert.NotEmpty(t, resp.AgentID)
				assert.NotEmpty(t, resp.AgentToken)
				return
			}
			var se *agentapi.StatusError
			require.True(t, errors.As(err, &se), "want a status error, got %v", err)
			assert.Equal(t, tt.wantCode, se.Code)
			s.logs.waitLog(t, tt.wantLog...)
		})
	}

	t.Run("users' API needs no certificate", func(t *testing.T) {
		code, _, _ := s.do(t, "GET", "/v2/apps", "", basicAuth("admin", "s3cret")...)
		assert.Equal(t, http.StatusOK, code)
		code, _, _ = s.do(t, "GET", "/v2/apps", "")
		assert.Equal(t, http.StatusUnauthorized, code)
	})
}

func TestAgentClientCANeedsTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "agents-ca")
	err := newApp().Run([]string{"scheduler", "--in-memory", "--http-address", "127.0.0.1:0", "--agent-client-ca", ca.CertFile})
	assert.ErrorContains(t, err, "--agent-client-ca needs --tls-cert")
	bad := filepath.Join(dir, "bad.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not a certificate"), 0o644))
	cert := tlstest.SelfSigned(t, dir, "scheduler")
	err = newApp().Run([]string{"scheduler", "--in-memory", "--http-address", "127.0.0.1:0", "--https-port", "0",
		"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--agent-client-ca", bad})
	assert.ErrorContains(t, err, "no PEM certificate")
	err = newApp().Run([]string{"scheduler", "--in-memory", "--http-address", "127.0.0.1:0", "--agent-client-cert-hostname"})
	assert.ErrorContains(t, err, "--agent-client-cert-hostname needs --agent-client-ca")
}

// TestAgentClientCertHostnameE2E: with --agent-client-cert-hostname an
// agent registers only under a hostname its certificate names.
func TestAgentClientCertHostnameE2E(t *testing.T) {
	dir := t.TempDir()
	server := tlstest.SelfSigned(t, dir, "scheduler")
	ca := tlstest.NewCA(t, dir, "agents-ca")
	cert := ca.Client(t, "agent1", "agent1", "agent1.example")
	httpsPort := freePort(t)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: server.Pool, Certificates: []tls.Certificate{cert}}}}
	s := startSecScheduler(t, hc, "https", fmt.Sprintf("127.0.0.1:%d", httpsPort),
		"--http-address", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--disable-http",
		"--https-port", strconv.Itoa(httpsPort), "--tls-cert", server.CertFile, "--tls-key", server.KeyFile,
		"--agent-client-ca", ca.CertFile, "--agent-client-cert-hostname")

	tests := []struct {
		hostname string
		wantCode int // 0: registered
		wantLog  []string
	}{
		{hostname: "agent1.example"},
		{hostname: "agent2.example", wantCode: http.StatusForbidden,
			wantLog: []string{"agent registration refused: the hostname is not a name of its client certificate", "hostname=agent2.example"}},
		{hostname: "agent1", wantCode: http.StatusForbidden, // the common name alone does not count
			wantLog: []string{"agent registration refused", "hostname=agent1 "}},
	}
	for _, tt := range tests {
		t.Run(tt.hostname, func(t *testing.T) {
			c := agentapi.NewClient(s.base, hc)
			resp, err := c.Register(t.Context(), agentapi.RegisterRequest{Hostname: tt.hostname, Address: "127.0.0.1",
				Resources: agentapi.Resources{CPUs: 1, Mem: 128}})
			if tt.wantCode == 0 {
				require.NoError(t, err)
				assert.NotEmpty(t, resp.AgentID)
				return
			}
			var se *agentapi.StatusError
			require.True(t, errors.As(err, &se), "want a status error, got %v", err)
			assert.Equal(t, tt.wantCode, se.Code)
			s.logs.waitLog(t, tt.wantLog...)
		})
	}
}
