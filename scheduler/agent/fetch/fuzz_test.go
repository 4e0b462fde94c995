package fetch

import (
	"archive/tar"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzExtract feeds arbitrary tar and zip archives through Fetch and
// checks that nothing is written beside the sandbox and that, when the
// fetch succeeds, every symbolic link in the sandbox that the kernel can
// resolve resolves inside it.
func FuzzExtract(f *testing.F) {
	f.Add(false, tarOf(f, dir("d/"), file("d/a", "A"), symlink("l", "d/a")))
	f.Add(false, tarOf(f, symlink("s", "."), symlink("l", "s/../x")))
	f.Add(false, tarOf(f, file("../x", "X")))
	f.Add(false, tarOf(f, file("a", "A"), entry{name: "b", link: "a", typ: tar.TypeLink}))
	f.Add(true, zipOf(f, dir("z/"), file("z/a", "A"), symlink("z/l", "../z")))
	f.Add(true, zipOf(f, file("/abs", "X")))
	f.Fuzz(func(t *testing.T, isZip bool, data []byte) {
		src := filepath.Join(t.TempDir(), "in.tar")
		if isZip {
			src = filepath.Join(filepath.Dir(src), "in.zip")
		}
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		parent := t.TempDir()
		sandbox := filepath.Join(parent, "sandbox")
		err := New(Config{MaxBytes: 1 << 20}).Fetch(t.Context(), sandbox, []Artifact{{URI: src, Extract: true}})

		ents, rerr := os.ReadDir(parent)
		if rerr != nil {
			t.Fatal(rerr)
		}
		for _, e := range ents {
			if e.Name() != "sandbox" {
				t.Fatalf("%s written beside the sandbox (fetch error: %v)", e.Name(), err)
			}
		}
		if err != nil {
			return
		}
		real, rerr := filepath.EvalSymlinks(sandbox)
		if rerr != nil {
			t.Fatal(rerr)
		}
		_ = filepath.WalkDir(sandbox, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			to, err := filepath.EvalSymlinks(p)
			if err != nil {
				return nil // dangling or a loop: leads nowhere
			}
			if to != real && !strings.HasPrefix(to, real+string(filepath.Separator)) {
				t.Errorf("link %s resolves to %s, outside the sandbox", p, to)
			}
			return nil
		})
	})
}
