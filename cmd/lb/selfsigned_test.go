package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
)

func TestPrepareCerts(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		flag     bool
		certsSet bool
		existing bool
		wantNew  bool
	}{
		{name: "image default: generated", flag: true, wantNew: true},
		{name: "flag off: nothing", flag: false},
		{name: "--ssl-certs given: nothing", flag: true, certsSet: true},
		{name: "existing file is kept", flag: true, existing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "etc", "ssl", "cert.pem")
			if tt.existing {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte("mounted"), 0o600))
			}
			s := defaults()
			s.sslCerts, s.sslCertsSet, s.selfSignedCert = []string{path}, tt.certsSet, tt.flag
			var logs bytes.Buffer
			require.NoError(t, prepareCerts(s, now, slog.New(slog.NewTextHandler(&logs, nil))))
			b, err := os.ReadFile(path)
			switch {
			case tt.wantNew:
				require.NoError(t, err)
				cert, err := tls.X509KeyPair(b, b)
				require.NoError(t, err, "certificate and key in one PEM file, as HAProxy's crt wants")
				leaf, err := x509.ParseCertificate(cert.Certificate[0])
				require.NoError(t, err)
				assert.Equal(t, "*", leaf.Subject.CommonName)
				assert.Equal(t, now.Add(selfSignedValidity), leaf.NotAfter)
				fi, err := os.Stat(path)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the key is private")
				assert.Contains(t, logs.String(), "self-signed")
			case tt.existing:
				assert.Equal(t, "mounted", string(b))
			default:
				assert.ErrorIs(t, err, os.ErrNotExist)
			}
		})
	}
}

func TestPrepareCertsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	cert, cert0 := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "cert0.pem")
	require.NoError(t, os.WriteFile(cert, []byte("stale"), 0o600))
	s := defaults()
	s.selfSignedCert = true
	s.sslCerts = []string{cert, cert0}
	s.envCerts = []envCert{{variable: "HAPROXY_SSL_CERT", path: cert, pem: "PEM A\n"}, {variable: "HAPROXY_SSL_CERT0", path: cert0, pem: "PEM B\n"}}
	var logs bytes.Buffer
	require.NoError(t, prepareCerts(s, time.Now(), slog.New(slog.NewTextHandler(&logs, nil))))
	for path, want := range map[string]string{cert: "PEM A\n", cert0: "PEM B\n"} {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, want, string(b), "the environment's certificate replaces the file, as the image's run script does")
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}
	assert.NotContains(t, logs.String(), "self-signed", "no self-signed certificate when the environment gives one")
	assert.NotContains(t, logs.String(), "PEM A", "certificate contents are not logged")
}

// TestSelfSignedCertServedByHAProxy checks that HAProxy serves TLS with
// the generated file and a client sees the certificate.
func TestSelfSignedCertServedByHAProxy(t *testing.T) {
	dir := haproxytest.Dir(t)
	path := filepath.Join(dir, "cert.pem")
	require.NoError(t, writeSelfSignedCert(path, time.Now()))
	port := haproxytest.FreePort(t)
	haproxytest.Start(t, fmt.Sprintf(`defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend https
  bind 127.0.0.1:%d ssl crt %s
  http-request return status 200 content-type text/plain string ok
`, port, path))
	conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // self-signed on purpose
	require.NoError(t, err)
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	require.NotEmpty(t, certs)
	assert.Equal(t, "*", certs[0].Subject.CommonName)
}
