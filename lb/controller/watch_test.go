package controller

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitNotified fails unless ch gets a notification within 5 s.
func waitNotified(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no notification", what)
	}
}

// notNotified fails if ch gets a notification within 200 ms.
func notNotified(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: unexpected notification", what)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestWatchTemplatesAndCerts(t *testing.T) {
	tdir := t.TempDir()
	cdir := t.TempDir()
	cert := filepath.Join(cdir, "site.pem")
	require.NoError(t, os.WriteFile(cert, []byte("old"), 0o600))
	h := newHarness(t, Config{TemplatesDir: tdir, WatchFiles: []string{cert}})
	require.NoError(t, h.c.watch(t.Context()))

	require.NoError(t, os.WriteFile(filepath.Join(tdir, "HAPROXY_BACKEND_HEAD"), []byte("\nbackend {backend}\n"), 0o644))
	waitNotified(t, h.c.templatesChanged, "template written")
	notNotified(t, h.c.certsChanged, "template written")

	// Certificates are usually replaced by rename.
	tmp := filepath.Join(cdir, ".site.pem.tmp")
	require.NoError(t, os.WriteFile(tmp, []byte("new"), 0o600))
	require.NoError(t, os.Rename(tmp, cert))
	waitNotified(t, h.c.certsChanged, "certificate replaced")
	notNotified(t, h.c.templatesChanged, "certificate replaced")

	// Other files next to the certificate do not count.
	require.NoError(t, os.WriteFile(filepath.Join(cdir, "unrelated"), []byte("x"), 0o600))
	notNotified(t, h.c.certsChanged, "unrelated file")
}

func TestWatchNothing(t *testing.T) {
	h := newHarness(t, Config{})
	require.NoError(t, h.c.watch(t.Context()))
}

func TestWatchMissingTemplatesDir(t *testing.T) {
	h := newHarness(t, Config{TemplatesDir: filepath.Join(t.TempDir(), "missing")})
	require.Error(t, h.c.watch(t.Context()))
}
