package docker

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSandboxLogsStripAndResume(t *testing.T) {
	dir := t.TempDir()
	w, err := openSandboxLogs(dir)
	require.NoError(t, err)
	assert.True(t, w.since().IsZero(), "a new sandbox starts from the beginning")

	t1 := "2026-11-24T22:50:01.123456789Z"
	t2 := "2026-11-24T22:50:02.000000001Z"
	for _, tc := range []struct {
		file  *stampedFile
		frame string
	}{
		{w.stdout, t1 + " one\n"},
		{w.stderr, t2 + " two words\n"},
		{w.stdout, "no timestamp here\n"}, // kept whole
		{w.stdout, "not-a-time rest\n"},   // kept whole
		{w.stderr, t1 + " older line\n"},  // does not move the position back
	} {
		n, err := tc.file.Write([]byte(tc.frame))
		require.NoError(t, err)
		assert.Equal(t, len(tc.frame), n, "stdcopy needs the whole frame accounted for")
	}
	require.NoError(t, w.close())

	assert.Equal(t, "one\nno timestamp here\nnot-a-time rest\n", readFile(t, filepath.Join(dir, StdoutFile)))
	assert.Equal(t, "two words\nolder line\n", readFile(t, filepath.Join(dir, StderrFile)))

	// Reopened (agent restart): resume just after the newest line.
	w2, err := openSandboxLogs(dir)
	require.NoError(t, err)
	want, err := time.Parse(time.RFC3339Nano, t2)
	require.NoError(t, err)
	assert.Equal(t, want.Add(time.Nanosecond), w2.since())
	// A new container in the same sandbox starts from the beginning.
	w2.reset()
	assert.True(t, w2.since().IsZero())
	require.NoError(t, w2.close())

	// A damaged position file means "from the beginning", not an error.
	require.NoError(t, os.WriteFile(filepath.Join(dir, sinceFile), []byte("garbage"), 0o644))
	w3, err := openSandboxLogs(dir)
	require.NoError(t, err)
	assert.True(t, w3.since().IsZero())
	require.NoError(t, w3.close())
}

// A container sees its sandbox and can plant links and FIFOs there; the
// agent must not follow them out of the sandbox nor block on them.
func TestSandboxLogsRefuseLinksOut(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "host-file")
	require.NoError(t, os.WriteFile(outside, []byte("host secret\n"), 0o600))
	for _, name := range []string{StdoutFile, StderrFile, sinceFile} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.Symlink(outside, filepath.Join(dir, name)))
			w, err := openSandboxLogs(dir)
			if err == nil {
				// Only .logs-since can be planted without failing the
				// open: then it is neither read nor written through.
				require.Equal(t, sinceFile, name)
				assert.True(t, w.since().IsZero(), "position not read from the host file")
				_, werr := w.stdout.Write([]byte("2026-11-24T22:50:01.000000001Z line\n"))
				require.NoError(t, werr)
				assert.Error(t, w.close(), "position not written through the link")
			} else {
				assert.Contains(t, err.Error(), name)
			}
			b, rerr := os.ReadFile(outside)
			require.NoError(t, rerr)
			assert.Equal(t, "host secret\n", string(b), "host file untouched")
		})
	}
	t.Run("fifo", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, syscall.Mkfifo(filepath.Join(dir, StdoutFile), 0o644))
		_, err := openSandboxLogs(dir) // must not block waiting for a reader
		require.Error(t, err)
	})
}
