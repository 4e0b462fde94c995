// Package fetch downloads a task's artifacts (a Marathon app's fetch and
// legacy uris) into the task's sandbox before the task starts, as the
// Mesos fetcher does:
//
//   - An artifact is saved in the sandbox under the last path segment of
//     its URI, or under DestPath, which is relative to the sandbox and
//     must stay inside it.
//   - http and https URIs are downloaded; file:// URIs and absolute paths
//     are copied from the agent's disk, but only from the directories the
//     agent's operator allows (Config.LocalDirs): the agent reads them
//     with its own privileges, and a Docker task sees its sandbox.
//   - An Executable artifact gets mode 0755 and is never extracted.
//   - With Extract, an archive (.tar, .tar.gz, .tgz, .tar.bz2, .tbz2,
//     .tar.xz, .txz, .zip) is unpacked into the sandbox and kept next to
//     its contents; a lone .gz file is decompressed next to itself.
//   - Cache is ignored: every start downloads again.
//
// Archives are untrusted input. Every write goes through an os.Root on
// the sandbox, entries whose names leave the sandbox fail the fetch, and
// so do symbolic links that lead outside it (checked once all artifacts
// are in place, following the links the way the kernel will). The bytes
// written (downloads plus extracted contents) count against one limit
// per task, Config.MaxBytes.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Defaults of Config fields.
const (
	// DefaultMaxBytes caps what one task's artifacts write: 1 GiB.
	DefaultMaxBytes = 1 << 30
	// DefaultTimeout bounds the download or copy of one artifact.
	DefaultTimeout = 10 * time.Minute
)

// Errors a fetch can wrap; test with errors.Is.
var (
	// ErrTooLarge means the artifacts exceed Config.MaxBytes.
	ErrTooLarge = errors.New("artifacts exceed the size limit")
	// ErrUnsafePath means a destination, archive entry or symbolic link
	// would leave the sandbox.
	ErrUnsafePath = errors.New("path leaves the sandbox")
	// ErrLocalNotAllowed means a local file outside Config.LocalDirs.
	ErrLocalNotAllowed = errors.New("local file outside the directories the agent allows (agent --fetch-local-dir)")
	// ErrUnsupportedScheme means the URI is not http, https, file or an
	// absolute path.
	ErrUnsupportedScheme = errors.New("unsupported URI scheme")
)

// Artifact is one URI to put in a task's sandbox (Marathon's fetch entry).
type Artifact struct {
	URI        string
	Extract    bool
	Executable bool
	Cache      bool
	DestPath   string
}

// Config configures a Fetcher. The zero value gives the defaults.
type Config struct {
	// HTTPClient downloads http and https URIs; nil means a client with
	// http.DefaultTransport's settings. Its redirects are followed.
	HTTPClient *http.Client
	// Timeout bounds the download (or local copy) of one artifact;
	// default DefaultTimeout.
	Timeout time.Duration
	// MaxBytes bounds the bytes one Fetch call writes into a sandbox,
	// downloads and extracted contents together; default
	// DefaultMaxBytes.
	MaxBytes int64
	// LocalDirs are the directories file:// URIs and absolute paths may
	// be copied from (symbolic links may not lead out of them); none
	// means local files cannot be fetched.
	LocalDirs []string
	// Logger receives warnings (an archive kept unextracted) and debug
	// detail; nil discards them.
	Logger *slog.Logger
}

// Fetcher puts artifacts in sandboxes. It is safe for concurrent use.
type Fetcher struct {
	client    *http.Client
	localDirs []string
	timeout   time.Duration
	maxBytes  int64
	log       *slog.Logger
}

// New returns a Fetcher with cfg's defaults filled in.
func New(cfg Config) *Fetcher {
	f := &Fetcher{client: cfg.HTTPClient, timeout: cfg.Timeout, maxBytes: cfg.MaxBytes, log: cfg.Logger}
	for _, d := range cfg.LocalDirs {
		if d != "" {
			f.localDirs = append(f.localDirs, filepath.Clean(d))
		}
	}
	if f.client == nil {
		f.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if f.timeout <= 0 {
		f.timeout = DefaultTimeout
	}
	if f.maxBytes <= 0 {
		f.maxBytes = DefaultMaxBytes
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

// Error is the failure of one artifact; its message names the URI (with
// any password redacted) and the reason.
type Error struct {
	URI string
	Err error
}

func (e *Error) Error() string { return "fetch " + redact(e.URI) + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *Error) Unwrap() error { return e.Err }

func redact(uri string) string {
	if u, err := url.Parse(uri); err == nil && u.User != nil {
		return u.Redacted()
	}
	return uri
}

// Fetch puts arts, in order, into the sandbox directory (created when
// missing). It stops at the first failure and returns an *Error naming
// the artifact. Files already in the sandbox under the same names are
// replaced.
func (f *Fetcher) Fetch(ctx context.Context, sandbox string, arts []Artifact) error {
	if len(arts) == 0 {
		return nil
	}
	if err := os.MkdirAll(sandbox, 0o755); err != nil {
		return fmt.Errorf("fetch: sandbox: %w", err)
	}
	root, err := os.OpenRoot(sandbox)
	if err != nil {
		return fmt.Errorf("fetch: sandbox: %w", err)
	}
	defer root.Close()
	run := &fetchRun{f: f, root: root, budget: &budget{left: f.maxBytes, max: f.maxBytes}}
	for _, a := range arts {
		if err := run.one(ctx, a); err != nil {
			return &Error{URI: a.URI, Err: err}
		}
	}
	// Links are checked once everything is in place: a later entry or
	// artifact can change where an earlier link leads.
	for _, l := range run.links {
		if err := staysInside(root, l.name); err != nil {
			_ = root.Remove(l.name)
			return &Error{URI: l.uri, Err: fmt.Errorf("symbolic link %q: %w", l.name, err)}
		}
	}
	return nil
}

// fetchRun is the state of one Fetch call.
type fetchRun struct {
	f      *Fetcher
	root   *os.Root
	budget *budget
	links  []createdLink
}

type createdLink struct{ name, uri string }

func (r *fetchRun) one(ctx context.Context, a Artifact) error {
	src, err := parseSource(a.URI)
	if err != nil {
		return err
	}
	name, err := destName(a, src)
	if err != nil {
		return err
	}
	if a.Cache {
		r.f.log.Debug("artifact cache not implemented: downloading", "uri", redact(a.URI))
	}
	ctx, cancel := context.WithTimeout(ctx, r.f.timeout)
	defer cancel()
	body, err := r.f.open(ctx, src)
	if err != nil {
		return err
	}
	mode := fs.FileMode(0o644)
	if a.Executable {
		mode = 0o755
	}
	err = r.writeFile(ctx, name, body, mode)
	body.Close()
	if err != nil {
		return err
	}
	if a.Executable {
		// The umask must not drop the bits the app asked for.
		if err := r.root.Chmod(name, 0o755); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
		return nil
	}
	if !a.Extract {
		return nil
	}
	kind := archiveKindOf(name)
	if kind == notArchive {
		kind = archiveKindOf(src.base())
	}
	switch kind {
	case notArchive:
		return nil
	}
	if err := r.extract(ctx, name, kind, a.URI); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	return nil
}

// source is where an artifact comes from: a URL or a local file.
type source struct {
	url   *url.URL // http or https
	local string   // absolute path on the agent
}

// base is the source's last path segment.
func (s source) base() string {
	if s.url != nil {
		return path.Base(s.url.Path)
	}
	return filepath.Base(s.local)
}

func parseSource(uri string) (source, error) {
	if uri == "" {
		return source{}, errors.New("empty URI")
	}
	if strings.HasPrefix(uri, "/") {
		return source{local: filepath.Clean(uri)}, nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return source{}, err
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return source{}, errors.New("no host in URI")
		}
		return source{url: u}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return source{}, fmt.Errorf("file URI on another host %q", u.Host)
		}
		if !path.IsAbs(u.Path) {
			return source{}, errors.New("file URI without an absolute path")
		}
		return source{local: filepath.Clean(u.Path)}, nil
	case "":
		return source{}, fmt.Errorf("%w: relative path (want http, https, file or an absolute path)", ErrUnsupportedScheme)
	default:
		return source{}, fmt.Errorf("%w %q (want http, https, file or an absolute path)", ErrUnsupportedScheme, u.Scheme)
	}
}

// destName is the artifact's file name relative to the sandbox.
func destName(a Artifact, src source) (string, error) {
	if a.DestPath != "" {
		if !filepath.IsLocal(a.DestPath) {
			return "", fmt.Errorf("destPath %q: %w", a.DestPath, ErrUnsafePath)
		}
		name := filepath.Clean(a.DestPath)
		if name == "." {
			return "", fmt.Errorf("destPath %q names the sandbox itself", a.DestPath)
		}
		return name, nil
	}
	base := src.base()
	if base == "" || base == "." || base == "/" || !filepath.IsLocal(base) {
		return "", errors.New("cannot name a file after the URI (no last path segment); set destPath")
	}
	return base, nil
}

// open returns the artifact's contents.
func (f *Fetcher) open(ctx context.Context, src source) (io.ReadCloser, error) {
	if src.url == nil {
		file, err := f.openLocal(src.local)
		if err != nil {
			return nil, err
		}
		fi, err := file.Stat()
		if err != nil {
			file.Close()
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			file.Close()
			return nil, fmt.Errorf("%s is not a regular file", src.local)
		}
		return file, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.url.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "switchyard-agent")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return resp.Body, nil
}

// openLocal opens path through an os.Root on the allowed directory that
// holds it (non-blocking: a FIFO must not hang the agent).
func (f *Fetcher) openLocal(path string) (*os.File, error) {
	for _, d := range f.localDirs {
		rel, err := filepath.Rel(d, path)
		if err != nil || !filepath.IsLocal(rel) {
			continue
		}
		root, err := os.OpenRoot(d)
		if err != nil {
			return nil, err
		}
		defer root.Close()
		return root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	}
	return nil, ErrLocalNotAllowed
}

// writeFile replaces name in the sandbox with the contents of r.
func (r *fetchRun) writeFile(ctx context.Context, name string, src io.Reader, mode fs.FileMode) error {
	if dir := filepath.Dir(name); dir != "." {
		if err := r.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	// Remove first: the old file may be read-only or a symbolic link
	// (which OpenFile would follow).
	if fi, err := r.root.Lstat(name); err == nil && !fi.IsDir() {
		if err := r.root.Remove(name); err != nil {
			return err
		}
	}
	out, err := r.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, r.budget.reader(ctx, src))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// budget counts the bytes a fetch may still write.
type budget struct {
	left, max int64
}

// reader wraps src so that reading past the budget fails with
// ErrTooLarge and reading stops when ctx ends.
func (b *budget) reader(ctx context.Context, src io.Reader) io.Reader {
	return &budgetReader{ctx: ctx, b: b, r: src}
}

type budgetReader struct {
	ctx context.Context
	b   *budget
	r   io.Reader
}

func (br *budgetReader) Read(p []byte) (int, error) {
	if err := br.ctx.Err(); err != nil {
		return 0, err
	}
	// Read one byte more than allowed to tell "exactly at the limit"
	// from "over it".
	if int64(len(p)) > br.b.left+1 {
		p = p[:br.b.left+1]
	}
	n, err := br.r.Read(p)
	if int64(n) > br.b.left {
		br.b.left = 0
		return 0, fmt.Errorf("%w of %d bytes", ErrTooLarge, br.b.max)
	}
	br.b.left -= int64(n)
	return n, err
}
