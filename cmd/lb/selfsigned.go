package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// selfSignedValidity is how long a generated certificate is valid: ten
// years, as in marathon-lb's image.
const selfSignedValidity = 10 * 365 * 24 * time.Hour

// prepareCerts writes the certificate files lb is to serve before HAProxy
// starts, the way marathon-lb's image does: the certificates given in
// the environment (HAPROXY_SSL_CERT...), and otherwise, with
// --self-signed-cert and no --ssl-certs, a self-signed certificate. That
// one is written (unlike the image, which overwrites it on every start)
// only when the default file does not exist yet, so a mounted certificate
// is served as it is.
func prepareCerts(s *settings, now time.Time, log *slog.Logger) error {
	for _, c := range s.envCerts {
		if err := writeFileAtomic(c.path, []byte(c.pem)); err != nil {
			return fmt.Errorf("%s: %w", c.variable, err)
		}
		log.Info("certificate from the environment written", "variable", c.variable, "path", c.path)
	}
	if !s.selfSignedCert || s.sslCertsSet || len(s.envCerts) > 0 || len(s.sslCerts) == 0 {
		return nil
	}
	path := s.sslCerts[0]
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--self-signed-cert: %w", err)
	}
	if err := writeSelfSignedCert(path, now); err != nil {
		return fmt.Errorf("--self-signed-cert: %w", err)
	}
	log.Info("no certificate given: serving :443 with a self-signed certificate", "path", path)
	return nil
}

// writeSelfSignedCert writes a PEM file HAProxy's "crt" accepts: a
// self-signed certificate for any name (CN "*", as marathon-lb's image)
// followed by its private key.
func writeSelfSignedCert(path string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "*", Organization: []string{"Switchyard self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	return writeFileAtomic(path, out)
}

// writeFileAtomic writes data to path, readable only by its owner (the
// file holds a private key), creating the directory if needed. The file
// appears whole or not at all.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".selfsigned-*.pem")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
