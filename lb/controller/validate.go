package controller

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"slices"

	"github.com/switchyard/switchyard/haproxy"
)

// validateBoth validates cfg two ways at once: check is the authority
// (haproxy -c), and parse is a config-parser pass that must read the same
// backends and servers as the section splitter the runtime-API path relies
// on. haproxy -c runs in its own process, so the parse costs no latency
// unless it is the slower of the two. A config either rejects is invalid;
// HAProxy's own verdict is reported first since it carries the lines the
// bad-app isolation uses.
func validateBoth(ctx context.Context, cfg []byte, check, parse func(context.Context, []byte) error) error {
	parsed := make(chan error, 1)
	go func() { parsed <- parse(ctx, cfg) }()
	err := check(ctx, cfg)
	perr := <-parsed
	if err != nil {
		return err
	}
	if perr != nil {
		return fmt.Errorf("%w: %w", haproxy.ErrInvalidConfig, perr)
	}
	return nil
}

// parseConfig runs haproxy.Parse (config-parser) on cfg, in parts (see
// parseChanged).
func parseConfig(ctx context.Context, cfg []byte) error {
	return parseChanged(ctx, nil, cfg, parseWhole)
}

// parseWhole runs haproxy.Parse on cfg in one pass.
func parseWhole(_ context.Context, cfg []byte) error {
	_, err := haproxy.Parse(cfg)
	return err
}

// parseBatch is the number of sections handed to config-parser at once:
// its memory grows with the text it reads (about 360 MiB for the 2.3 MB
// configuration of 5,000 apps in one pass), so a large configuration is
// read in parts, each with the global and defaults sections.
const parseBatch = 64

// splitChunks splits cfg into the text before its first section and the
// text of each section (its header line to the next header).
func splitChunks(cfg []byte) (prefix []byte, chunks [][]byte) {
	start := -1
	for pos := 0; pos < len(cfg); {
		end := bytes.IndexByte(cfg[pos:], '\n')
		if end < 0 {
			end = len(cfg)
		} else {
			end += pos + 1
		}
		line := bytes.TrimLeft(cfg[pos:end], " \t")
		word := line
		if i := bytes.IndexAny(word, " \t\r\n"); i >= 0 {
			word = word[:i]
		}
		if sectionKeywords[string(word)] {
			if start < 0 {
				prefix = cfg[:pos]
			} else {
				chunks = append(chunks, cfg[start:pos])
			}
			start = pos
		}
		pos = end
	}
	if start < 0 {
		return cfg, nil
	}
	return prefix, append(chunks, cfg[start:])
}

// isContext reports whether a section applies to others (global and
// defaults sections), so that every part config-parser reads needs it.
func isContext(chunk []byte) bool {
	line := bytes.TrimLeft(chunk, " \t")
	return bytes.HasPrefix(line, []byte("global")) || bytes.HasPrefix(line, []byte("defaults"))
}

// chunkKey hashes a section's text without the blank lines that end it
// (the last section has none). A collision (odds about 2^-64 per pair)
// would only skip config-parser's reading of one section; HAProxy still
// reads it on reload.
func chunkKey(seed maphash.Seed, c []byte) uint64 {
	return maphash.Bytes(seed, bytes.TrimRight(c, " \t\r\n"))
}

// parseChanged runs parse (config-parser) on the sections of cfg that are
// not in prev, a configuration it accepted before (all of them when prev
// is nil or a global or defaults section changed), in parts of parseBatch
// sections that each start with cfg's text before its first section and
// its global and defaults sections. The cost follows the change, not the
// configuration: one new app costs one small pass at 5,000 apps, where a
// whole pass costs seconds and hundreds of MiB.
func parseChanged(ctx context.Context, prev, cfg []byte, parse func(context.Context, []byte) error) error {
	prefix, chunks := splitChunks(cfg)
	var seen map[uint64]bool
	seed := maphash.MakeSeed()
	if prev != nil {
		pp, pc := splitChunks(prev)
		seen = make(map[uint64]bool, len(pc))
		for _, c := range pc {
			seen[chunkKey(seed, c)] = true
		}
		if !bytes.Equal(pp, prefix) {
			seen = nil
		}
		for _, c := range chunks {
			if isContext(c) && !seen[chunkKey(seed, c)] {
				seen = nil // every section depends on it
				break
			}
		}
	}
	var context, changed [][]byte
	for _, c := range chunks {
		switch {
		case isContext(c):
			context = append(context, c)
		case !seen[chunkKey(seed, c)]:
			changed = append(changed, c)
		}
	}
	if len(changed) == 0 && seen != nil {
		return nil
	}
	head := slices.Concat(append([][]byte{prefix}, context...)...)
	for lo := 0; lo == 0 || lo < len(changed); lo += parseBatch {
		if err := ctx.Err(); err != nil {
			return err
		}
		part := slices.Concat(append([][]byte{head}, changed[lo:min(lo+parseBatch, len(changed))]...)...)
		if err := parse(ctx, part); err != nil {
			return err
		}
	}
	return nil
}
