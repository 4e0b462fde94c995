package docker

import (
	"os"
	"path/filepath"
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
