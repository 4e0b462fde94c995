package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agentapi"
)

func TestAgentSecretFile(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "agent-secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	base, _ := runScheduler(t, "--agent-secret-file", secret)

	register := func(auth string) int {
		req, err := http.NewRequestWithContext(t.Context(), "POST", base+agentapi.PathRegister, strings.NewReader(`{"hostname":"n"}`))
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, register(""))
	assert.Equal(t, http.StatusUnauthorized, register("Bearer nope"))
	assert.Equal(t, http.StatusOK, register("Bearer s3cret"))
}

func TestAgentSecretFileErrors(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	err := newApp().Run([]string{"scheduler", "--http-addr", "127.0.0.1:0", "--agent-secret-file", empty})
	assert.ErrorContains(t, err, "--agent-secret-file")
	err = newApp().Run([]string{"scheduler", "--http-addr", "127.0.0.1:0", "--agent-secret-file", empty + ".missing"})
	assert.ErrorContains(t, err, "--agent-secret-file")
}

func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:8080": true, "127.0.0.5:1": true,
		":8080": false, "0.0.0.0:8080": false, "10.0.0.1:8080": false, "[::]:8080": false, "nonsense": false,
	} {
		assert.Equal(t, want, loopbackAddr(addr), addr)
	}
}
