package haproxy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	require.NoError(t, WriteFileAtomic(path, []byte("one"), 0o600))
	require.NoError(t, WriteFileAtomic(path, []byte("two"), 0o644))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two", string(got))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")

	err = WriteFileAtomic(filepath.Join(dir, "missing", "x.cfg"), []byte("x"), 0o644)
	assert.Error(t, err, "directory does not exist")
}

func TestAlertLines(t *testing.T) {
	out := "[NOTICE]   (12) : haproxy version is 2.6.12\n" +
		"[ALERT]    (12) : config : parsing [/tmp/x.cfg:3] : unknown keyword 'foo' in 'backend' section\n" +
		"[ALERT]    (12) : config : Fatal errors found in configuration.\n"
	assert.Equal(t, []string{
		"[ALERT] config : parsing [/tmp/x.cfg:3] : unknown keyword 'foo' in 'backend' section",
		"[ALERT] config : Fatal errors found in configuration.",
	}, alertLines(out))
	assert.Equal(t, []string{"something odd", "[NOTICE] hello"}, alertLines("something odd\n\n[NOTICE] (1) : hello\n"))
}

func TestCheckWithoutBinary(t *testing.T) {
	err := Check(context.Background(), filepath.Join(t.TempDir(), "no-haproxy"), []byte("global\n"))
	require.Error(t, err)
	assert.False(t, errors.Is(err, ErrInvalidConfig), "a missing binary is not an invalid config: %v", err)
}

func TestStartWithoutBinary(t *testing.T) {
	dir := t.TempDir()
	p := NewProcess(ProcessConfig{Binary: filepath.Join(dir, "no-haproxy"), ConfigPath: filepath.Join(dir, "haproxy.cfg")})
	err := p.Start(context.Background())
	require.ErrorIs(t, err, ErrStartFailed)
	<-p.Done()
	require.NoError(t, p.Stop(context.Background()))
	_, err = p.PIDs(context.Background())
	assert.ErrorIs(t, err, ErrNotRunning)
	assert.ErrorIs(t, p.Reload(context.Background(), "x"), ErrReloadFailed)
	assert.ErrorIs(t, p.Apply(context.Background(), Change{Reload: true, Reason: "x"}), ErrNeedsReload)
	assert.ErrorIs(t, p.Apply(context.Background(), Change{Remove: []Server{{Backend: "b", Name: "s"}}}), ErrNotRunning)
	assert.Error(t, p.Start(context.Background()), "a Process starts once")
}

func TestDefaultMasterSocket(t *testing.T) {
	short := "/etc/haproxy"
	assert.Equal(t, "/etc/haproxy/haproxy-master.sock", defaultMasterSocket(short))

	long := "/tmp/" + strings.Repeat("d", 120)
	a := defaultMasterSocket(long)
	assert.LessOrEqual(t, len(a), maxSocketPath, "socket path must fit a unix socket")
	assert.NotEqual(t, a, defaultMasterSocket(long+"x"), "different config dirs must not share a socket")
	assert.Equal(t, a, defaultMasterSocket(long), "the path must be stable across restarts")
}

func TestOriginalArgs(t *testing.T) {
	ours := []string{"-W", "-db", "-S", "/x/m.sock,level,admin", "-f", "/x/haproxy.cfg", "-p", "/x/haproxy.pid"}
	tests := []struct {
		name string
		args []string
	}{
		{"as started", ours},
		{"reloaded once", append([]string{"-sf", "12", "-x", "sockpair@3"}, ours...)},
		{"reloaded with old workers", append([]string{"-sf", "12", "13", "-x", "sockpair@5"}, ours...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, ours, originalArgs(tc.args))
		})
	}
	assert.Empty(t, originalArgs([]string{"-x"}), "a truncated command line")
}

func TestNextRestartDelay(t *testing.T) {
	tests := []struct{ after, want time.Duration }{
		{0, restartMinDelay},
		{restartMinDelay, 2 * restartMinDelay},
		{restartMaxDelay / 2, restartMaxDelay},
		{restartMaxDelay, restartMaxDelay},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, nextRestartDelay(tc.after), "after %s", tc.after)
	}
}
