package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxSecretSize bounds one secret file.
const maxSecretSize = 64 << 10

// resolveSecrets sets env[name] to the content of each secret the task's
// env references (Assignment.Secrets: name -> source). A source names a
// file below dir, the agent's --secrets-dir ("/db/password" is
// dir/db/password); one trailing newline is dropped. Paths leaving dir,
// links out of it and files larger than 64 KiB are refused. The error
// names the variable and the source, never the content.
func resolveSecrets(env map[string]string, secrets map[string]string, dir string) error {
	if len(secrets) == 0 {
		return nil
	}
	if dir == "" {
		return errors.New("the app references secrets but this agent has no --secrets-dir")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("secrets dir: %w", err)
	}
	defer root.Close()
	names := make([]string, 0, len(secrets))
	for n := range secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		src := secrets[name]
		rel := filepath.Clean(strings.TrimLeft(src, "/"))
		if rel == "." || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("secret for env %s: source %q is not a file below the secrets dir", name, src)
		}
		f, err := root.Open(rel)
		if err != nil {
			return fmt.Errorf("secret for env %s: source %q: %w", name, src, errors.Unwrap(err))
		}
		st, err := f.Stat()
		if err == nil && !st.Mode().IsRegular() {
			err = errors.New("not a regular file")
		}
		var b []byte
		if err == nil {
			b, err = io.ReadAll(io.LimitReader(f, maxSecretSize+1))
		}
		f.Close()
		if err == nil && len(b) > maxSecretSize {
			err = fmt.Errorf("larger than %d bytes", maxSecretSize)
		}
		if err != nil {
			return fmt.Errorf("secret for env %s: source %q: %w", name, src, err)
		}
		env[name] = strings.TrimSuffix(string(b), "\n")
	}
	return nil
}
