package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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
