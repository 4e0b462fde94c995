package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveSecrets(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "db"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "db", "pass"), []byte("s3cret\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "big"), []byte(strings.Repeat("x", maxSecretSize+1)), 0o600))
	outside := filepath.Join(t.TempDir(), "host-file")
	require.NoError(t, os.WriteFile(outside, []byte("host"), 0o600))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "link-out")))

	tests := []struct {
		name    string
		secrets map[string]string
		dir     string
		want    map[string]string
		wantErr string
	}{
		{name: "none", dir: "", want: map[string]string{"A": "1"}},
		{name: "file below the dir", secrets: map[string]string{"DB": "/db/pass"}, dir: dir, want: map[string]string{"A": "1", "DB": "s3cret"}},
		{name: "relative source", secrets: map[string]string{"DB": "db/pass"}, dir: dir, want: map[string]string{"A": "1", "DB": "s3cret"}},
		{name: "no secrets dir", secrets: map[string]string{"DB": "/db/pass"}, dir: "", wantErr: "no --secrets-dir"},
		{name: "missing file", secrets: map[string]string{"DB": "/db/nope"}, dir: dir, wantErr: `env DB: source "/db/nope"`},
		{name: "escape with ..", secrets: map[string]string{"DB": "/../etc/passwd"}, dir: dir, wantErr: "not a file below"},
		{name: "link out of the dir", secrets: map[string]string{"DB": "/link-out"}, dir: dir, wantErr: `source "/link-out"`},
		{name: "a directory", secrets: map[string]string{"DB": "/db"}, dir: dir, wantErr: "not a regular file"},
		{name: "too big", secrets: map[string]string{"DB": "/big"}, dir: dir, wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"A": "1"}
			err := resolveSecrets(env, tt.secrets, tt.dir)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NotContains(t, err.Error(), "host")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, env)
		})
	}
}
