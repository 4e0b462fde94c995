package fetch

import (
	"archive/tar"
	"archive/zip"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ulikunitz/xz"
)

// archiveKind is what extraction does with a file, from its name.
type archiveKind int

const (
	notArchive archiveKind = iota
	tarArchive
	tarGzArchive
	tarBz2Archive
	xzArchive
	zipArchive
	gzFile // a single gzip-compressed file
)

// archiveKindOf recognizes archives by name, as the Mesos fetcher does.
func archiveKindOf(name string) archiveKind {
	n := strings.ToLower(name)
	has := func(exts ...string) bool {
		for _, e := range exts {
			if strings.HasSuffix(n, e) && len(n) > len(e) {
				return true
			}
		}
		return false
	}
	switch {
	case has(".tar.gz", ".tgz"):
		return tarGzArchive
	case has(".tar.bz2", ".tbz2", ".tbz"):
		return tarBz2Archive
	case has(".tar.xz", ".txz"):
		return xzArchive
	case has(".tar"):
		return tarArchive
	case has(".zip"):
		return zipArchive
	case has(".gz"):
		return gzFile
	}
	return notArchive
}

// maxLinkTarget bounds the target of a symbolic link stored in a zip.
const maxLinkTarget = 4096

// extract unpacks the archive name (in the sandbox) into the sandbox.
func (r *fetchRun) extract(ctx context.Context, name string, kind archiveKind, uri string) error {
	f, err := r.root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	switch kind {
	case tarArchive:
		return r.untar(ctx, f, uri)
	case tarGzArchive:
		gz, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		defer gz.Close()
		return r.untar(ctx, gz, uri)
	case tarBz2Archive:
		return r.untar(ctx, bzip2.NewReader(f), uri)
	case xzArchive:
		xr, err := xz.NewReader(f)
		if err != nil {
			return err
		}
		return r.untar(ctx, xr, uri)
	case zipArchive:
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		zr, err := zip.NewReader(f, fi.Size())
		if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
			return err // names are checked one by one below
		}
		return r.unzip(ctx, zr, uri)
	case gzFile:
		gz, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		defer gz.Close()
		// x.gz is decompressed to x. A destPath without the suffix (the
		// URI had it) is decompressed in place.
		if n := len(name) - len(".gz"); n > 0 && strings.EqualFold(name[n:], ".gz") {
			return r.writeFile(ctx, name[:n], gz, 0o644)
		}
		tmp := name + ".gunzip"
		if err := r.writeFile(ctx, tmp, gz, 0o644); err != nil {
			return err
		}
		return r.root.Rename(tmp, name)
	}
	return fmt.Errorf("unknown archive kind %d", kind)
}

func (r *fetchRun) untar(ctx context.Context, src io.Reader, uri string) error {
	tr := tar.NewReader(src)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return err // an insecure name is refused by entryName below
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return err
		}
		perm := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = r.root.MkdirAll(name, perm|0o700)
		case tar.TypeReg, tar.TypeGNUSparse:
			if perm == 0 {
				perm = 0o644
			}
			err = r.writeFile(ctx, name, tr, perm)
		case tar.TypeSymlink:
			err = r.symlink(hdr.Linkname, name, uri)
		case tar.TypeLink:
			err = r.hardlink(hdr.Linkname, name, uri)
		default:
			// Devices, FIFOs: nothing a task needs from an artifact.
			r.f.log.Debug("skipping archive entry", "uri", redact(uri), "entry", hdr.Name, "type", string(hdr.Typeflag))
		}
		if err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
}

func (r *fetchRun) unzip(ctx context.Context, zr *zip.Reader, uri string) error {
	for _, zf := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		name, err := entryName(zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir() || strings.HasSuffix(zf.Name, "/"):
			err = r.root.MkdirAll(name, mode.Perm()|0o700)
		case mode&fs.ModeSymlink != 0:
			var target string
			target, err = readLinkEntry(zf)
			if err == nil {
				err = r.symlink(target, name, uri)
			}
		case mode.IsRegular():
			err = r.unzipFile(ctx, zf, name)
		default:
			r.f.log.Debug("skipping archive entry", "uri", redact(uri), "entry", zf.Name, "mode", mode.String())
		}
		if err != nil {
			return fmt.Errorf("entry %q: %w", zf.Name, err)
		}
	}
	return nil
}

func (r *fetchRun) unzipFile(ctx context.Context, zf *zip.File, name string) error {
	rc, err := zf.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	perm := zf.Mode().Perm()
	if perm == 0 {
		perm = 0o644
	}
	return r.writeFile(ctx, name, rc, perm)
}

func readLinkEntry(zf *zip.File) (string, error) {
	rc, err := zf.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxLinkTarget {
		return "", errors.New("symbolic link target too long")
	}
	return string(b), nil
}

// entryName checks an archive entry's name and returns it relative to
// the sandbox.
func entryName(n string) (string, error) {
	clean := strings.TrimRight(n, "/")
	if clean == "" && n != "" {
		return "", fmt.Errorf("entry %q: %w", n, ErrUnsafePath) // "/"
	}
	if clean == "" || strings.ContainsRune(clean, 0) {
		return "", fmt.Errorf("entry %q: invalid name", n)
	}
	if !filepath.IsLocal(clean) {
		return "", fmt.Errorf("entry %q: %w", n, ErrUnsafePath)
	}
	return filepath.Clean(clean), nil
}

// symlink creates the link name -> target. A target that leaves the
// sandbox on its face is refused here; Fetch checks where every link
// really leads once all artifacts are in place.
func (r *fetchRun) symlink(target, name, uri string) error {
	if target == "" || filepath.IsAbs(target) || strings.ContainsRune(target, 0) ||
		!filepath.IsLocal(filepath.Join(filepath.Dir(name), target)) {
		return fmt.Errorf("symbolic link to %q: %w", target, ErrUnsafePath)
	}
	if err := r.replaceable(name); err != nil {
		return err
	}
	if err := r.root.Symlink(target, name); err != nil {
		return err
	}
	r.links = append(r.links, createdLink{name: name, uri: uri})
	return nil
}

// hardlink creates name as a hard link to the earlier entry target.
func (r *fetchRun) hardlink(target, name, uri string) error {
	old, err := entryName(target)
	if err != nil {
		return fmt.Errorf("hard link: %w", err)
	}
	if err := r.replaceable(name); err != nil {
		return err
	}
	if err := r.root.Link(old, name); err != nil {
		return err
	}
	// A hard link to a symbolic link is another symbolic link.
	if fi, err := r.root.Lstat(name); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		r.links = append(r.links, createdLink{name: name, uri: uri})
	}
	return nil
}

// replaceable makes room for a new entry at name: its parent exists and
// any file or link already there is gone.
func (r *fetchRun) replaceable(name string) error {
	if dir := filepath.Dir(name); dir != "." {
		if err := r.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if fi, err := r.root.Lstat(name); err == nil && !fi.IsDir() {
		return r.root.Remove(name)
	}
	return nil
}

// maxLinkHops bounds symbolic link resolution (Linux's limit is 40).
const maxLinkHops = 40

// staysInside reports, as an error, whether following the path name
// (relative to root) the way the kernel does leaves root: each symbolic
// link on the way is replaced by its target and ".." steps to the real
// parent. Components that do not exist are taken as they are written.
func staysInside(root *os.Root, name string) error {
	var resolved []string // real directories from root, no links
	todo := splitPath(name)
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) == 0 {
				return ErrUnsafePath
			}
			resolved = resolved[:len(resolved)-1]
			continue
		}
		p := filepath.Join(append(resolved[:len(resolved):len(resolved)], c)...)
		fi, err := root.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			resolved = append(resolved, c)
			continue
		}
		if hops++; hops > maxLinkHops {
			return errors.New("too many levels of symbolic links")
		}
		target, err := root.Readlink(p)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			return ErrUnsafePath
		}
		todo = append(splitPath(target), todo...)
	}
	return nil
}

func splitPath(p string) []string {
	return strings.Split(filepath.ToSlash(p), "/")
}
