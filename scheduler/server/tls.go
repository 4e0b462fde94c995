package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TLSConfig returns a server TLS configuration (TLS 1.2 or later) that
// serves the certificate and key in the PEM files certFile and keyFile.
// The files are loaded now, so a bad pair fails at startup, and loaded
// again on a handshake after either file changed (its modification time
// or size), so a rotated certificate needs no restart. A pair that fails
// to load later is logged and the previous one kept.
func TLSConfig(certFile, keyFile string, log *slog.Logger) (*tls.Config, error) {
	if log == nil {
		log = slog.Default()
	}
	c := &certFiles{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.get(), nil },
	}, nil
}

type fileStamp struct {
	mod  time.Time
	size int64
}

type certFiles struct {
	certFile, keyFile string
	log               *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	certSeen fileStamp
	keySeen  fileStamp
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// reload loads the pair when either file changed since the last load.
func (c *certFiles) reload() error {
	cs, err := stamp(c.certFile)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	ks, err := stamp(c.keyFile)
	if err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && cs == c.certSeen && ks == c.keySeen {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if c.cert != nil {
		c.log.Info("tls certificate reloaded", "cert", c.certFile)
	}
	c.cert, c.certSeen, c.keySeen = &pair, cs, ks
	return nil
}

func (c *certFiles) get() *tls.Certificate {
	if err := c.reload(); err != nil {
		c.log.Warn("tls certificate not reloaded; serving the previous one", "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert
}
