package fetch

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"
)

// entry is one member of a test archive.
type entry struct {
	name string
	body string
	mode int64
	link string // symlink target (type symlink) or hard link target
	typ  byte   // tar type; 0 = regular file
}

func file(name, body string) entry { return entry{name: name, body: body, mode: 0o644} }
func dir(name string) entry        { return entry{name: name, mode: 0o755, typ: tar.TypeDir} }
func symlink(name, target string) entry {
	return entry{name: name, link: target, mode: 0o777, typ: tar.TypeSymlink}
}

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Mode: e.mode, Typeflag: typ, Linkname: e.link, ModTime: time.Unix(0, 0)}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		require.NoError(t, tw.WriteHeader(hdr))
		_, err := tw.Write([]byte(e.body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func xzOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	xw, err := xz.NewWriter(&buf)
	require.NoError(t, err)
	_, err = xw.Write(b)
	require.NoError(t, err)
	require.NoError(t, xw.Close())
	return buf.Bytes()
}

func zipOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		body := e.body
		switch e.typ {
		case tar.TypeDir:
			h.SetMode(fs.ModeDir | 0o755)
		case tar.TypeSymlink:
			h.SetMode(fs.ModeSymlink | 0o777)
			body = e.link
		default:
			h.SetMode(fs.FileMode(e.mode))
		}
		w, err := zw.CreateHeader(h)
		require.NoError(t, err)
		_, err = w.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// serve starts a server answering each path with its body; other paths
// are 404.
func serve(t *testing.T, files map[string][]byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// tree lists the sandbox: file name -> contents, "->target" for links,
// "/" for directories.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, p)
		switch {
		case rel == ".":
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			out[rel] = "->" + target
		case d.IsDir():
			out[rel] = "/"
		default:
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			out[rel] = string(b)
		}
		return nil
	}))
	return out
}

func TestFetch(t *testing.T) {
	hello := []byte("hello\n")
	appTgz := gzipOf(t, tarOf(t, dir("app/"), entry{name: "app/run.sh", body: "#!/bin/sh\n", mode: 0o755}, file("app/conf/x.conf", "x=1"), symlink("app/current", "conf")))
	local := t.TempDir()
	localFile := filepath.Join(local, "local.txt")
	require.NoError(t, os.WriteFile(localFile, []byte("from disk"), 0o600))
	elsewhere := filepath.Join(t.TempDir(), "secret.txt")
	require.NoError(t, os.WriteFile(elsewhere, []byte("not for tasks"), 0o600))
	require.NoError(t, os.Symlink(elsewhere, filepath.Join(local, "link-out")))

	tarXz := xzOf(t, tarOf(t, file("x/a.txt", "xz")))
	base := serve(t, map[string][]byte{
		"/files/hello.txt":        hello,
		"/app.tar.gz":             appTgz,
		"/app.tgz":                appTgz,
		"/plain.tar":              tarOf(t, file("./a.txt", "A")),
		"/bundle.zip":             zipOf(t, dir("z/"), file("z/a.txt", "zipped"), entry{name: "z/bin", body: "#!", mode: 0o755}),
		"/data.json.gz":           gzipOf(t, []byte(`{"a":1}`)),
		"/tool":                   []byte("#!/bin/sh\necho hi\n"),
		"/slip.tar.gz":            gzipOf(t, tarOf(t, file("ok.txt", "ok"), file("../evil.txt", "pwned"))),
		"/abs.tar":                tarOf(t, file("/tmp/evil.txt", "pwned")),
		"/slip.zip":               zipOf(t, file("../../evil.txt", "pwned")),
		"/link-abs.tar":           tarOf(t, symlink("passwd", "/etc/passwd")),
		"/link-up.tar":            tarOf(t, symlink("sub/up", "../../outside")),
		"/link-chain.tar":         tarOf(t, symlink("s", "."), symlink("l", "s/../outside")),
		"/link-write.tar":         tarOf(t, symlink("d", "sub"), dir("sub/"), file("d/f.txt", "via link")),
		"/link-zip.zip":           zipOf(t, symlink("l", "/etc/passwd")),
		"/hardlink.tar":           tarOf(t, file("a.txt", "A"), entry{name: "b.txt", link: "a.txt", typ: tar.TypeLink}),
		"/hardlink-out.tar":       tarOf(t, entry{name: "b.txt", link: "../x", typ: tar.TypeLink}),
		"/archive.tar.xz":         tarXz,
		"/corrupt.tar.xz":         []byte("not really xz"),
		"/noext":                  tarOf(t, file("inside.txt", "in")),
		"/bomb.tar.gz":            gzipOf(t, tarOf(t, file("big", strings.Repeat("0", 8<<10)))),
		"/big.bin":                bytes.Repeat([]byte("x"), 8<<10),
		"/exactly-the-limit.bin":  bytes.Repeat([]byte("x"), 4<<10),
		"/executable-archive.tgz": appTgz,
	})

	tests := []struct {
		name     string
		arts     []Artifact
		maxBytes int64
		want     map[string]string // whole sandbox tree; nil: not checked
		modes    map[string]fs.FileMode
		wantErr  error  // errors.Is, when set
		errHas   string // substring of the message, when set
	}{
		{
			name: "plain file named after the URI",
			arts: []Artifact{{URI: base + "/files/hello.txt"}},
			want: map[string]string{"hello.txt": "hello\n"},
		},
		{
			name: "destPath with a subdirectory",
			arts: []Artifact{{URI: base + "/files/hello.txt", DestPath: "etc/greeting"}},
			want: map[string]string{"etc": "/", "etc/greeting": "hello\n"},
		},
		{
			name: "tar.gz extracted next to the kept archive",
			arts: []Artifact{{URI: base + "/app.tar.gz", Extract: true}},
			want: map[string]string{
				"app.tar.gz": string(appTgz), "app": "/", "app/run.sh": "#!/bin/sh\n",
				"app/conf": "/", "app/conf/x.conf": "x=1", "app/current": "->conf",
			},
			modes: map[string]fs.FileMode{"app/run.sh": 0o755, "app/conf/x.conf": 0o644},
		},
		{
			name: "tgz",
			arts: []Artifact{{URI: base + "/app.tgz", Extract: true}},
			want: map[string]string{
				"app.tgz": string(appTgz), "app": "/", "app/run.sh": "#!/bin/sh\n",
				"app/conf": "/", "app/conf/x.conf": "x=1", "app/current": "->conf",
			},
		},
		{
			name: "archive not extracted without extract",
			arts: []Artifact{{URI: base + "/app.tar.gz"}},
			want: map[string]string{"app.tar.gz": string(appTgz)},
		},
		{
			name: "plain tar with ./ names",
			arts: []Artifact{{URI: base + "/plain.tar", Extract: true}},
			want: map[string]string{"plain.tar": string(tarOf(t, file("./a.txt", "A"))), "a.txt": "A"},
		},
		{
			name: "zip",
			arts: []Artifact{{URI: base + "/bundle.zip", Extract: true}},
			want: map[string]string{
				"bundle.zip": string(zipOf(t, dir("z/"), file("z/a.txt", "zipped"), entry{name: "z/bin", body: "#!", mode: 0o755})),
				"z":          "/", "z/a.txt": "zipped", "z/bin": "#!",
			},
			modes: map[string]fs.FileMode{"z/bin": 0o755},
		},
		{
			name: "single gzip file decompressed",
			arts: []Artifact{{URI: base + "/data.json.gz", Extract: true}},
			want: map[string]string{"data.json.gz": string(gzipOf(t, []byte(`{"a":1}`))), "data.json": `{"a":1}`},
		},
		{
			name: "gz to a destPath without the suffix is decompressed in place",
			arts: []Artifact{{URI: base + "/data.json.gz", Extract: true, DestPath: "a"}},
			want: map[string]string{"a": `{"a":1}`},
		},
		{
			name: "gz to an upper-case destPath",
			arts: []Artifact{{URI: base + "/data.json.gz", Extract: true, DestPath: "DATA.GZ"}},
			want: map[string]string{"DATA.GZ": string(gzipOf(t, []byte(`{"a":1}`))), "DATA": `{"a":1}`},
		},
		{
			name:  "executable gets 0755",
			arts:  []Artifact{{URI: base + "/tool", Executable: true}},
			want:  map[string]string{"tool": "#!/bin/sh\necho hi\n"},
			modes: map[string]fs.FileMode{"tool": 0o755},
		},
		{
			name:  "executable is never extracted",
			arts:  []Artifact{{URI: base + "/executable-archive.tgz", Executable: true, Extract: true}},
			want:  map[string]string{"executable-archive.tgz": string(appTgz)},
			modes: map[string]fs.FileMode{"executable-archive.tgz": 0o755},
		},
		{
			name: "archive recognized by the URI when destPath has no extension",
			arts: []Artifact{{URI: base + "/app.tgz", DestPath: "bundle", Extract: true}},
			want: map[string]string{
				"bundle": string(appTgz), "app": "/", "app/run.sh": "#!/bin/sh\n",
				"app/conf": "/", "app/conf/x.conf": "x=1", "app/current": "->conf",
			},
		},
		{
			name: "unrecognized name is not extracted",
			arts: []Artifact{{URI: base + "/noext", Extract: true}},
			want: map[string]string{"noext": string(tarOf(t, file("inside.txt", "in")))},
		},
		{
			name: "tar.xz extracted",
			arts: []Artifact{{URI: base + "/archive.tar.xz", Extract: true}},
			want: map[string]string{"archive.tar.xz": string(tarXz), "x": "/", "x/a.txt": "xz"},
		},
		{
			name: "cache is accepted",
			arts: []Artifact{{URI: base + "/files/hello.txt", Cache: true}},
			want: map[string]string{"hello.txt": "hello\n"},
		},
		{
			name: "several artifacts in order",
			arts: []Artifact{{URI: base + "/files/hello.txt"}, {URI: base + "/tool", Executable: true}},
			want: map[string]string{"hello.txt": "hello\n", "tool": "#!/bin/sh\necho hi\n"},
		},
		{
			name: "file URI copied",
			arts: []Artifact{{URI: "file://" + localFile}},
			want: map[string]string{"local.txt": "from disk"},
		},
		{
			name: "absolute path copied",
			arts: []Artifact{{URI: localFile, DestPath: "copy.txt"}},
			want: map[string]string{"copy.txt": "from disk"},
		},
		{
			name:    "local file outside the allowed directories",
			arts:    []Artifact{{URI: "file://" + elsewhere}},
			wantErr: ErrLocalNotAllowed,
		},
		{
			name:    "dot-dot out of an allowed directory",
			arts:    []Artifact{{URI: local + "/../" + filepath.Base(filepath.Dir(elsewhere)) + "/secret.txt"}},
			wantErr: ErrLocalNotAllowed,
		},
		{
			name:   "link out of an allowed directory",
			arts:   []Artifact{{URI: filepath.Join(local, "link-out")}},
			errHas: "escapes",
		},
		{
			name:   "local directory refused",
			arts:   []Artifact{{URI: local}},
			errHas: "is not a regular file",
		},
		{
			name:    "missing local file",
			arts:    []Artifact{{URI: filepath.Join(local, "nope")}},
			wantErr: fs.ErrNotExist,
		},
		{
			name:   "404",
			arts:   []Artifact{{URI: base + "/missing.tgz"}},
			errHas: "fetch " + base + "/missing.tgz: HTTP 404 Not Found",
		},
		{
			name:   "corrupt tar.xz fails",
			arts:   []Artifact{{URI: base + "/corrupt.tar.xz", Extract: true}},
			errHas: "extract corrupt.tar.xz",
		},
		{
			name:    "unsupported scheme",
			arts:    []Artifact{{URI: "hdfs://namenode/app.tgz"}},
			wantErr: ErrUnsupportedScheme,
		},
		{
			name:    "relative path",
			arts:    []Artifact{{URI: "app.tgz"}},
			wantErr: ErrUnsupportedScheme,
		},
		{
			name:   "URI without a file name",
			arts:   []Artifact{{URI: base + "/"}},
			errHas: "set destPath",
		},
		{
			name:    "destPath escaping",
			arts:    []Artifact{{URI: base + "/files/hello.txt", DestPath: "../escaped.txt"}},
			wantErr: ErrUnsafePath,
		},
		{
			name:    "absolute destPath",
			arts:    []Artifact{{URI: base + "/files/hello.txt", DestPath: "/tmp/escaped.txt"}},
			wantErr: ErrUnsafePath,
		},
		{
			name:    "zip-slip in tar.gz",
			arts:    []Artifact{{URI: base + "/slip.tar.gz", Extract: true}},
			wantErr: ErrUnsafePath,
			errHas:  `"../evil.txt"`,
		},
		{
			name:    "absolute name in tar",
			arts:    []Artifact{{URI: base + "/abs.tar", Extract: true}},
			wantErr: ErrUnsafePath,
		},
		{
			name:    "zip-slip in zip",
			arts:    []Artifact{{URI: base + "/slip.zip", Extract: true}},
			wantErr: ErrUnsafePath,
		},
		{
			name:    "absolute symlink",
			arts:    []Artifact{{URI: base + "/link-abs.tar", Extract: true}},
			wantErr: ErrUnsafePath,
		},
		{
			name:    "symlink climbing out",
			arts:    []Artifact{{URI: base + "/link-up.tar", Extract: true}},
			wantErr: ErrUnsafePath,
		},
		{
			name:    "symlink escaping through another link",
			arts:    []Artifact{{URI: base + "/link-chain.tar", Extract: true}},
			wantErr: ErrUnsafePath,
			errHas:  `symbolic link "l"`,
		},
		{
			name:    "symlink in zip",
			arts:    []Artifact{{URI: base + "/link-zip.zip", Extract: true}},
			wantErr: ErrUnsafePath,
		},
		{
			name: "writing through an inside link",
			arts: []Artifact{{URI: base + "/link-write.tar", Extract: true}},
			want: map[string]string{
				"link-write.tar": string(tarOf(t, symlink("d", "sub"), dir("sub/"), file("d/f.txt", "via link"))),
				"d":              "->sub", "sub": "/", "sub/f.txt": "via link",
			},
		},
		{
			name: "hard link",
			arts: []Artifact{{URI: base + "/hardlink.tar", Extract: true}},
			want: map[string]string{
				"hardlink.tar": string(tarOf(t, file("a.txt", "A"), entry{name: "b.txt", link: "a.txt", typ: tar.TypeLink})),
				"a.txt":        "A", "b.txt": "A",
			},
		},
		{
			name:    "hard link out",
			arts:    []Artifact{{URI: base + "/hardlink-out.tar", Extract: true}},
			wantErr: ErrUnsafePath,
		},
		{
			name:     "download over the size cap",
			arts:     []Artifact{{URI: base + "/big.bin"}},
			maxBytes: 4 << 10,
			wantErr:  ErrTooLarge,
		},
		{
			name:     "download exactly at the size cap",
			arts:     []Artifact{{URI: base + "/exactly-the-limit.bin"}},
			maxBytes: 4 << 10,
			want:     map[string]string{"exactly-the-limit.bin": strings.Repeat("x", 4<<10)},
		},
		{
			name:     "extracted contents count against the cap",
			arts:     []Artifact{{URI: base + "/bomb.tar.gz", Extract: true}},
			maxBytes: 4 << 10,
			wantErr:  ErrTooLarge,
		},
		{
			name:     "the cap is for all artifacts together",
			arts:     []Artifact{{URI: base + "/exactly-the-limit.bin"}, {URI: base + "/files/hello.txt"}},
			maxBytes: 4 << 10,
			wantErr:  ErrTooLarge,
			errHas:   "hello.txt",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			sandbox := filepath.Join(parent, "sandbox")
			f := New(Config{MaxBytes: tt.maxBytes, LocalDirs: []string{local}})
			err := f.Fetch(t.Context(), sandbox, tt.arts)
			if tt.wantErr != nil || tt.errHas != "" {
				require.Error(t, err)
				var fe *Error
				assert.True(t, errors.As(err, &fe), "error %v is a *fetch.Error", err)
				if tt.wantErr != nil {
					assert.ErrorIs(t, err, tt.wantErr)
				}
				if tt.errHas != "" {
					assert.Contains(t, err.Error(), tt.errHas)
				}
			} else {
				require.NoError(t, err)
			}
			if tt.want != nil {
				assert.Equal(t, tt.want, tree(t, sandbox))
			}
			for name, mode := range tt.modes {
				fi, err := os.Stat(filepath.Join(sandbox, name))
				require.NoError(t, err)
				assert.Equal(t, mode, fi.Mode().Perm(), "mode of %s", name)
			}
			// Nothing is ever written next to the sandbox.
			ents, err := os.ReadDir(parent)
			require.NoError(t, err)
			for _, e := range ents {
				assert.Equal(t, "sandbox", e.Name(), "written outside the sandbox")
			}
		})
	}
}

func TestFetchReplacesExistingFiles(t *testing.T) {
	base := serve(t, map[string][]byte{"/a.txt": []byte("new")})
	sandbox := t.TempDir()
	// A read-only leftover of an earlier attempt, and a link that would
	// send the write elsewhere.
	require.NoError(t, os.WriteFile(filepath.Join(sandbox, "a.txt"), []byte("old"), 0o444))
	require.NoError(t, os.WriteFile(filepath.Join(sandbox, "other"), []byte("keep"), 0o644))
	require.NoError(t, os.Symlink("other", filepath.Join(sandbox, "b.txt")))
	f := New(Config{})
	require.NoError(t, f.Fetch(t.Context(), sandbox, []Artifact{{URI: base + "/a.txt"}, {URI: base + "/a.txt", DestPath: "b.txt"}}))
	assert.Equal(t, map[string]string{"a.txt": "new", "b.txt": "new", "other": "keep"}, tree(t, sandbox))
}

func TestFetchRedactsPassword(t *testing.T) {
	base := serve(t, nil)
	uri := strings.Replace(base, "http://", "http://user:secret@", 1) + "/x"
	err := New(Config{}).Fetch(t.Context(), t.TempDir(), []Artifact{{URI: uri}})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret")
	assert.Contains(t, err.Error(), "404")
}

func TestFetchHonoursContext(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })

	tests := []struct {
		name    string
		ctx     func(context.Context) (context.Context, context.CancelFunc)
		timeout time.Duration
		want    error
	}{
		{name: "cancelled", ctx: func(c context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(c)
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, want: context.Canceled},
		{name: "per-artifact timeout", ctx: func(c context.Context) (context.Context, context.CancelFunc) {
			return c, func() {}
		}, timeout: 100 * time.Millisecond, want: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx(t.Context())
			defer cancel()
			err := New(Config{Timeout: tt.timeout}).Fetch(ctx, t.TempDir(), []Artifact{{URI: srv.URL + "/slow"}})
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestArchiveKindOf(t *testing.T) {
	tests := map[string]archiveKind{
		"a.tar": tarArchive, "a.TAR.GZ": tarGzArchive, "a.tgz": tarGzArchive, "a.tar.bz2": tarBz2Archive,
		"a.tbz2": tarBz2Archive, "a.tar.xz": xzArchive, "a.txz": xzArchive, "a.zip": zipArchive,
		"a.gz": gzFile, "a.jar": notArchive, "tar": notArchive, ".gz": notArchive, "a": notArchive,
	}
	for name, want := range tests {
		assert.Equal(t, want, archiveKindOf(name), name)
	}
}
