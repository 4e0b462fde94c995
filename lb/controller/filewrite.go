package controller

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Writing before a reload without waiting for the disk.
//
// haproxy.WriteFileAtomic fsyncs the file and its directory, which takes
// from a millisecond to a hundred on a busy disk. HAProxy only needs to
// read the new file, which the rename makes visible at once; durability
// matters for the next start. So a reload writes with writeVisible and
// fsyncs (syncFiles) while HAProxy reloads.

// writeVisible puts data at path atomically (a temporary file renamed over
// it: readers see the old or the new content) without fsync.
func writeVisible(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// syncFiles fsyncs the files and their directories.
func syncFiles(paths []string) error {
	var errs []error
	dirs := map[string]bool{}
	for _, p := range paths {
		dirs[filepath.Dir(p)] = true
		if err := syncPath(p); err != nil {
			errs = append(errs, err)
		}
	}
	for d := range dirs {
		_ = syncPath(d) // best effort, as haproxy.WriteFileAtomic
	}
	return errors.Join(errs...)
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}

// writeVisible writes r's map files, then its config, without fsync; it
// returns the paths written, for syncFiles.
func (a *haproxyApplier) writeVisible(r rendered) ([]string, error) {
	var paths []string
	for _, name := range sortedKeys(r.Maps) {
		p := filepath.Join(a.mapDir, name)
		if err := writeVisible(p, r.Maps[name], 0o644); err != nil {
			return paths, fmt.Errorf("write map %s: %w", p, err)
		}
		paths = append(paths, p)
	}
	if err := writeVisible(a.configPath, r.Config, 0o644); err != nil {
		return paths, fmt.Errorf("write config: %w", err)
	}
	return append(paths, a.configPath), nil
}

// writeTemp writes data to a new temporary file next to path and syncs it;
// the caller renames it over path (or removes it).
func writeTemp(path string, data []byte, perm os.FileMode) (tmp string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	tmp = f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			tmp = ""
		}
	}()
	if _, err = f.Write(data); err != nil {
		return tmp, fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return tmp, fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return tmp, fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return tmp, fmt.Errorf("write %s: %w", path, err)
	}
	return tmp, nil
}
