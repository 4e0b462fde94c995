package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSandboxReachable: a task user that cannot pass through the agent's
// data dir is refused with the directory and the fix named, at agent
// start for the default user and at task start for an app's user,
// instead of the kernel's bare "permission denied" at exec.
func TestSandboxReachable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching task users needs root")
	}
	nobody, err := (&Agent{}).resolveTaskUser("nobody")
	require.NoError(t, err)
	closed := t.TempDir() // 0700, root's
	require.NoError(t, os.Chmod(closed, 0o700))
	inner := filepath.Join(closed, "agent", "sandbox")
	require.NoError(t, os.MkdirAll(inner, 0o711))
	err = reachable(inner, nobody)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "user nobody cannot reach")
	assert.Contains(t, err.Error(), "chmod o+x "+closed)

	require.NoError(t, os.Chmod(closed, 0o711))
	require.NoError(t, os.Chmod(filepath.Dir(closed), 0o711))
	assert.NoError(t, reachable(inner, nobody))
}
