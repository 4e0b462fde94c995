package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

func TestExitMessage(t *testing.T) {
	sandbox := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(sandbox, "stderr"), []byte(strings.Repeat("x", 1000)+"\npanic: boom\n"), 0o644))
	tests := []struct {
		name    string
		res     driver.ExitResult
		sandbox string
		want    string
	}{
		{"exit code", driver.ExitResult{ExitCode: 3}, "", "Command exited with status 3"},
		{"signal", driver.ExitResult{ExitCode: 137, Signal: 9}, "", "Command terminated by signal 9"},
		{"lost", driver.ExitResult{Err: errors.New("container vanished")}, "", "container vanished"},
		{"missing stderr", driver.ExitResult{ExitCode: 1}, t.TempDir(), "Command exited with status 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, exitMessage(tt.res, tt.sandbox))
		})
	}
	msg := exitMessage(driver.ExitResult{ExitCode: 2}, sandbox)
	assert.True(t, strings.HasPrefix(msg, "Command exited with status 2; stderr: x"), msg)
	assert.True(t, strings.HasSuffix(msg, "panic: boom"), msg)
	assert.Less(t, len(msg), 500)
}

func TestInstanceID(t *testing.T) {
	assert.Equal(t, "prod_web.marathon-5dd7", instanceID("prod_web.5dd7"))
	assert.Equal(t, "noDot", instanceID("noDot"))
}

func TestStderrTail(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "host-file")
	require.NoError(t, os.WriteFile(outside, []byte("host secret"), 0o600))
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{name: "no sandbox"},
		{name: "no file", setup: func(t *testing.T, dir string) {}},
		{name: "last bytes", want: strings.Repeat("y", 400), setup: func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "stderr"), []byte(strings.Repeat("x", 100)+strings.Repeat("y", 400)), 0o644))
		}},
		{name: "link out of the sandbox is not followed", setup: func(t *testing.T, dir string) {
			require.NoError(t, os.Symlink(outside, filepath.Join(dir, "stderr")))
		}},
		{name: "fifo does not block", setup: func(t *testing.T, dir string) {
			require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "stderr"), 0o644))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := ""
			if tt.setup != nil {
				dir = t.TempDir()
				tt.setup(t, dir)
			}
			assert.Equal(t, tt.want, stderrTail(dir))
		})
	}
}
