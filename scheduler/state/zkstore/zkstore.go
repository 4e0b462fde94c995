// Package zkstore is the ZooKeeper backend of the scheduler's state
// (state.Backend): every record is one node,
//
//	<root>/state/<bucket>/<escaped key>   data: the record's JSON
//
// A record larger than ChunkSize (ZooKeeper refuses nodes and requests
// over about 1 MB) is stored in chunk children "<gen>.<i>" of its node,
// whose own data then names the generation and the chunk count; the new
// chunks are written before the node's data switches to them, and the old
// ones are deleted after, so a reader never sees half a record.
//
// A Commit is one ZooKeeper multi-op (all or nothing) when it fits in
// MaxBatch bytes; a larger batch is split into several multis, each
// atomic, applied in order. Every multi first checks that the fence node
// exists (the leader's election node): once the leader's session expired
// its node is gone and a stale leader cannot write.
package zkstore

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/scheduler/state"
	szk "github.com/switchyard/switchyard/scheduler/zk"
)

// Defaults of Config.
const (
	DefaultChunkSize = 256 << 10
	DefaultMaxBatch  = 768 << 10
)

// ErrFenced means the fence node is gone: this scheduler is no longer the
// leader and must not write.
var ErrFenced = errors.New("zkstore: not the leader any more (fence node gone)")

// chunkMagic starts the data of a chunked record's node (JSON never starts
// with a NUL byte).
const chunkMagic = "\x00sy-chunks\x00"

// opOverhead is what a multi op costs beside its data (header, path,
// ACL), roughly.
const opOverhead = 128

// Config configures a Backend.
type Config struct {
	// Conn is the ZooKeeper session (the caller closes it).
	Conn *zk.Conn
	// Root is the --zk path ("/switchyard"); records go under Root/state.
	Root string
	// ACL is given to the nodes we create (default: open).
	ACL []zk.ACL
	// Fence, when set, is a node that must exist for a Commit to apply.
	Fence string
	// ChunkSize is the largest record data kept in one node (default
	// DefaultChunkSize).
	ChunkSize int
	// MaxBatch bounds the bytes of one multi-op (default DefaultMaxBatch).
	MaxBatch int
}

type record struct {
	chunked  bool
	children []string // every child node (chunks, current and stale)
}

// Backend is a state.Backend in ZooKeeper.
type Backend struct {
	cfg  Config
	base string

	mu sync.Mutex
	// recs holds the nodes that exist (path -> children); stale means it
	// may be wrong after a failed commit and is read again first.
	recs  map[string]*record
	stale bool
	gen   uint64
}

var _ state.Backend = (*Backend)(nil)

// Open creates the bucket nodes when missing and returns the backend.
func Open(cfg Config) (*Backend, error) {
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.ACL == nil {
		cfg.ACL = zk.WorldACL(zk.PermAll)
	}
	b := &Backend{cfg: cfg, base: strings.TrimRight(cfg.Root, "/") + "/state", recs: map[string]*record{}}
	for _, p := range append([]string{cfg.Root, b.base}, b.bucketPaths()...) {
		if err := szk.EnsurePath(cfg.Conn, p, cfg.ACL); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *Backend) bucketPaths() []string {
	var out []string
	for _, bk := range state.Buckets() {
		out = append(out, b.base+"/"+bk)
	}
	return out
}

// escapeKey makes a record key one node name.
func escapeKey(k string) string {
	switch k {
	case "", ".", "..":
		return "%" + strings.Repeat("2E", len(k)) + "~"
	}
	return url.PathEscape(k)
}

func unescapeKey(n string) (string, error) {
	if strings.HasSuffix(n, "~") {
		return strings.Repeat(".", strings.Count(n, "2E")), nil
	}
	return url.PathUnescape(n)
}

func (b *Backend) path(bucket, key string) string {
	return b.base + "/" + bucket + "/" + escapeKey(key)
}

// Load implements state.Backend: it reads every record (many reads in
// flight at once).
func (b *Backend) Load(fn func(bucket, key string, value []byte) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	type item struct {
		bucket, key string
		value       []byte
	}
	var (
		outMu sync.Mutex
		out   []item
	)
	recs := map[string]*record{}
	g := errgroup.Group{}
	g.SetLimit(32)
	for _, bk := range state.Buckets() {
		names, _, err := b.cfg.Conn.Children(b.base + "/" + bk)
		if err != nil {
			return fmt.Errorf("zk list %s: %w", bk, err)
		}
		for _, n := range names {
			key, err := unescapeKey(n)
			if err != nil {
				return fmt.Errorf("zk record name %s/%s: %w", bk, n, err)
			}
			p := b.base + "/" + bk + "/" + n
			rec := &record{}
			recs[p] = rec
			g.Go(func() error {
				v, err := b.read(p, rec)
				if errors.Is(err, zk.ErrNoNode) {
					return nil // deleted meanwhile
				}
				if err != nil || v == nil {
					return err
				}
				outMu.Lock()
				out = append(out, item{bk, key, v})
				outMu.Unlock()
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	b.recs = recs
	b.stale = false
	for _, it := range out {
		if err := fn(it.bucket, it.key, it.value); err != nil {
			return err
		}
	}
	return nil
}

// Get implements state.Backend: one record, chunks joined (nil when
// there is none).
func (b *Backend) Get(bucket, key string) ([]byte, error) {
	v, err := b.read(b.path(bucket, key), &record{})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	return v, err
}

// read returns a record's value, joining its chunks, and notes its
// children in rec.
func (b *Backend) read(p string, rec *record) ([]byte, error) {
	data, stat, err := b.cfg.Conn.Get(p)
	if err != nil {
		return nil, fmt.Errorf("zk get %s: %w", p, err)
	}
	if stat.NumChildren > 0 {
		if rec.children, _, err = b.cfg.Conn.Children(p); err != nil {
			return nil, fmt.Errorf("zk list %s: %w", p, err)
		}
	}
	gen, n, ok := parseHeader(data)
	if !ok {
		return data, nil
	}
	rec.chunked = true
	if n == 0 {
		return nil, nil // being created: not there yet
	}
	var buf bytes.Buffer
	for i := range n {
		c, _, err := b.cfg.Conn.Get(p + "/" + chunkName(gen, i))
		if err != nil {
			return nil, fmt.Errorf("zk get chunk %d of %s: %w", i, p, err)
		}
		buf.Write(c)
	}
	return buf.Bytes(), nil
}

func chunkName(gen uint64, i int) string { return fmt.Sprintf("%d.%d", gen, i) }

func header(gen uint64, n int) []byte {
	return []byte(fmt.Sprintf("%s%d %d", chunkMagic, gen, n))
}

func parseHeader(data []byte) (gen uint64, n int, ok bool) {
	rest, ok := bytes.CutPrefix(data, []byte(chunkMagic))
	if !ok {
		return 0, 0, false
	}
	g, c, ok := strings.Cut(string(rest), " ")
	if !ok {
		return 0, 0, false
	}
	gen, err1 := strconv.ParseUint(g, 10, 64)
	n, err2 := strconv.Atoi(c)
	return gen, n, err1 == nil && err2 == nil
}

// refresh re-reads which nodes exist (after a failed commit).
func (b *Backend) refresh() error {
	recs := map[string]*record{}
	for _, bp := range b.bucketPaths() {
		names, _, err := b.cfg.Conn.Children(bp)
		if err != nil {
			return fmt.Errorf("zk list %s: %w", bp, err)
		}
		for _, n := range names {
			p := bp + "/" + n
			rec := &record{}
			data, stat, err := b.cfg.Conn.Get(p)
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			if err != nil {
				return fmt.Errorf("zk get %s: %w", p, err)
			}
			_, _, rec.chunked = parseHeader(data)
			if stat.NumChildren > 0 {
				if rec.children, _, err = b.cfg.Conn.Children(p); err != nil {
					return fmt.Errorf("zk list %s: %w", p, err)
				}
			}
			recs[p] = rec
		}
	}
	b.recs = recs
	b.stale = false
	return nil
}

// step is ZooKeeper ops that must go into the same multi.
type step struct {
	ops  []any
	size int
}

// Commit implements state.Backend. See the package comment for how a
// batch maps to multi-ops.
func (b *Backend) Commit(ops []state.Op) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stale {
		if err := b.refresh(); err != nil {
			return err
		}
	}
	// Each record contributes steps: "before" steps (chunk writes, each
	// its own multi when large), one main step, and "after" steps
	// (deleting stale chunks). Main steps of all records are packed into
	// as few multis as fit.
	var pre, main, post []step
	next := map[string]*record{}
	for _, op := range ops {
		p := b.path(op.Bucket, op.Key)
		old := b.recs[p]
		if op.Value == nil {
			if old == nil {
				continue
			}
			var del []any
			for _, c := range old.children {
				del = append(del, &zk.DeleteRequest{Path: p + "/" + c, Version: -1})
			}
			del = append(del, &zk.DeleteRequest{Path: p, Version: -1})
			main = append(main, step{ops: del, size: opOverhead * len(del)})
			next[p] = nil
			continue
		}
		data := op.Value
		rec := &record{}
		if old != nil {
			rec.children = old.children
		}
		if len(data) > b.cfg.ChunkSize {
			// Generations are unique across schedulers and restarts.
			b.gen = max(b.gen+1, uint64(time.Now().UnixNano()))
			gen := b.gen
			if old == nil {
				// The node must exist before its chunks; it shows
				// nothing (an empty chunk list) until the header is set.
				pre = append(pre, step{ops: []any{&zk.CreateRequest{Path: p, Data: header(gen, 0), Acl: b.cfg.ACL}}, size: opOverhead})
			}
			var names []string
			for i := 0; i*b.cfg.ChunkSize < len(data); i++ {
				part := data[i*b.cfg.ChunkSize : min(len(data), (i+1)*b.cfg.ChunkSize)]
				name := chunkName(gen, i)
				names = append(names, name)
				pre = append(pre, step{ops: []any{&zk.CreateRequest{Path: p + "/" + name, Data: part, Acl: b.cfg.ACL}}, size: len(part) + opOverhead})
			}
			main = append(main, step{ops: []any{&zk.SetDataRequest{Path: p, Data: header(gen, len(names)), Version: -1}}, size: opOverhead})
			var del []any
			for _, c := range rec.children {
				del = append(del, &zk.DeleteRequest{Path: p + "/" + c, Version: -1})
			}
			if len(del) > 0 {
				post = append(post, step{ops: del, size: opOverhead * len(del)})
			}
			rec.chunked = true
			rec.children = names
			next[p] = rec
			continue
		}
		var o any
		if old == nil {
			o = &zk.CreateRequest{Path: p, Data: data, Acl: b.cfg.ACL}
		} else {
			o = &zk.SetDataRequest{Path: p, Data: data, Version: -1}
		}
		st := step{ops: []any{o}, size: len(data) + len(p) + opOverhead}
		if old != nil && len(old.children) > 0 {
			var del []any
			for _, c := range old.children {
				del = append(del, &zk.DeleteRequest{Path: p + "/" + c, Version: -1})
			}
			post = append(post, step{ops: del, size: opOverhead * len(del)})
		}
		main = append(main, st)
		next[p] = rec
	}
	for _, group := range [][]step{pre, main, post} {
		for _, multi := range b.pack(group) {
			if err := b.multi(multi); err != nil {
				b.stale = true
				return err
			}
		}
	}
	for p, rec := range next {
		if rec == nil {
			delete(b.recs, p)
		} else {
			b.recs[p] = rec
		}
	}
	return nil
}

// pack groups steps into multis of at most MaxBatch bytes (a step larger
// than that goes alone).
func (b *Backend) pack(steps []step) [][]any {
	var out [][]any
	var cur []any
	size := 0
	for _, s := range steps {
		if len(cur) > 0 && (size+s.size > b.cfg.MaxBatch || len(cur)+len(s.ops) > 1000) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, s.ops...)
		size += s.size
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func (b *Backend) multi(ops []any) error {
	if b.cfg.Fence != "" {
		ops = append([]any{&zk.CheckVersionRequest{Path: b.cfg.Fence, Version: -1}}, ops...)
	}
	res, err := b.cfg.Conn.Multi(ops...)
	if err == nil {
		return nil
	}
	if b.cfg.Fence != "" && len(res) > 0 && errors.Is(res[0].Error, zk.ErrNoNode) {
		return ErrFenced
	}
	for i, r := range res {
		// Ops other than the failing one report "api error" or
		// "runtime inconsistency" (an unknown code to the client).
		if r.Error != nil && !errors.Is(r.Error, zk.ErrAPIError) && !strings.HasPrefix(r.Error.Error(), "unknown error") {
			return fmt.Errorf("zk multi op %d (%s): %w", i, opPath(ops[i]), r.Error)
		}
	}
	return fmt.Errorf("zk multi: %w", err)
}

func opPath(o any) string {
	switch o := o.(type) {
	case *zk.CreateRequest:
		return "create " + o.Path
	case *zk.SetDataRequest:
		return "set " + o.Path
	case *zk.DeleteRequest:
		return "delete " + o.Path
	case *zk.CheckVersionRequest:
		return "check " + o.Path
	}
	return fmt.Sprintf("%T", o)
}

// Close implements state.Backend; the session is the caller's to close.
func (b *Backend) Close() error { return nil }

// Keys lists a bucket's record keys (for tests and tools).
func (b *Backend) Keys(bucket string) ([]string, error) {
	names, _, err := b.cfg.Conn.Children(b.base + "/" + bucket)
	if err != nil {
		return nil, fmt.Errorf("zk list %s: %w", bucket, err)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		k, err := unescapeKey(n)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}
