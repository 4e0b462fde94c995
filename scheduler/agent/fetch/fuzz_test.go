package fetch

import (
	"archive/tar"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzNames are the file names FuzzExtract gives its input, one per
// archive kind (the name picks the extraction).
var fuzzNames = []string{"in.tar", "in.zip", "in.gz", "in.tar.gz", "in.tar.bz2", "in.tar.xz", "in.bin"}

// FuzzExtract feeds arbitrary archives of every kind, under an arbitrary
// destPath, through Fetch and checks that it does not panic, that nothing
// is written beside the sandbox and that, when the fetch succeeds, every
// symbolic link in the sandbox that the kernel can resolve resolves inside
// it.
func FuzzExtract(f *testing.F) {
	f.Add(uint8(0), "", tarOf(f, dir("d/"), file("d/a", "A"), symlink("l", "d/a")))
	f.Add(uint8(0), "", tarOf(f, symlink("s", "."), symlink("l", "s/../x")))
	f.Add(uint8(0), "", tarOf(f, file("../x", "X")))
	f.Add(uint8(0), "", tarOf(f, file("a", "A"), entry{name: "b", link: "a", typ: tar.TypeLink}))
	f.Add(uint8(1), "", zipOf(f, dir("z/"), file("z/a", "A"), symlink("z/l", "../z")))
	f.Add(uint8(1), "", zipOf(f, file("/abs", "X")))
	f.Add(uint8(2), "a", gzipOf(f, []byte("x"))) // once panicked: .gz to a destPath without the suffix
	f.Add(uint8(3), "sub/pkg.tgz", gzipOf(f, tarOf(f, file("a", "A"))))
	f.Add(uint8(5), "", xzOf(f, tarOf(f, file("a", "A"))))
	f.Fuzz(func(t *testing.T, kind uint8, dest string, data []byte) {
		srcDir := t.TempDir()
		src := filepath.Join(srcDir, fuzzNames[int(kind)%len(fuzzNames)])
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if !filepath.IsLocal(dest) { // the API refuses such a destPath
			dest = ""
		}
		parent := t.TempDir()
		sandbox := filepath.Join(parent, "sandbox")
		err := New(Config{MaxBytes: 1 << 20, LocalDirs: []string{srcDir}}).Fetch(t.Context(), sandbox,
			[]Artifact{{URI: src, Extract: true, DestPath: dest}})
		if errors.Is(err, ErrLocalNotAllowed) {
			t.Fatalf("the input itself was refused: %v", err)
		}

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
