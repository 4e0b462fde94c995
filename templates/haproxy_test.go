package templates

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
)

// Paths used by the golden inputs; haproxyCheck maps them into a temp dir.
const (
	goldenMapDir  = "/etc/haproxy/maps"
	goldenCertDir = "/etc/ssl/switchyard"
)

// haproxyPath returns the haproxy binary; without one the test fails
// (skips under -short).
func haproxyPath(t *testing.T) string {
	t.Helper()
	return haproxytest.Binary(t)
}

// selfSignedPEM returns a certificate and its key in one PEM, as HAProxy's
// "crt" expects.
func selfSignedPEM(t *testing.T, host string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})...)
}

// haproxyCheck runs "haproxy -c" on out in a temp dir holding the map files
// and a self-signed PEM for every certificate under goldenCertDir that the
// config names. It fails the test with HAProxy's output when HAProxy
// rejects the config.
func haproxyCheck(t *testing.T, out *Output) {
	t.Helper()
	bin := haproxyPath(t)
	dir := t.TempDir()
	cfg := string(out.Config)
	cfg = strings.ReplaceAll(cfg, goldenMapDir, dir)
	certDir := filepath.Join(dir, "certs")
	require.NoError(t, os.MkdirAll(certDir, 0o755))
	for _, f := range strings.Fields(strings.NewReplacer("\n", " ").Replace(cfg)) {
		if strings.HasPrefix(f, goldenCertDir+"/") {
			p := filepath.Join(certDir, strings.TrimPrefix(f, goldenCertDir+"/"))
			if _, err := os.Stat(p); err != nil {
				require.NoError(t, os.WriteFile(p, selfSignedPEM(t, filepath.Base(p)), 0o600))
			}
		}
	}
	cfg = strings.ReplaceAll(cfg, goldenCertDir, certDir)
	for name, b := range out.Maps {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	path := filepath.Join(dir, "haproxy.cfg")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	cmd := exec.CommandContext(t.Context(), bin, "-c", "-f", path)
	res, err := cmd.CombinedOutput()
	require.NoError(t, err, "haproxy -c rejected the config:\n%s\n--- config ---\n%s", res, cfg)
	if strings.Contains(string(res), "WARNING") {
		t.Logf("haproxy -c warnings:\n%s", res)
	}
}
