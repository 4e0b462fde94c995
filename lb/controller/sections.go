package controller

import (
	"bytes"
	"sort"
	"strings"
)

// sectionKeywords are the HAProxy keywords that open a section.
var sectionKeywords = map[string]bool{
	"global": true, "defaults": true, "frontend": true, "backend": true,
	"listen": true, "userlist": true, "peers": true, "resolvers": true,
	"mailers": true, "program": true, "http-errors": true, "ring": true,
	"cache": true, "fcgi-app": true, "log-forward": true,
}

// section is a part of an HAProxy configuration: its keyword, its name
// (empty for global and an unnamed defaults) and its lines, 1-based and
// inclusive.
type section struct {
	kind, name string
	first      int
	last       int
}

// sectionsOf splits cfg into its sections, in order. Lines before the
// first section (comments) belong to none.
func sectionsOf(cfg []byte) []section {
	var out []section
	n := 0
	for line := range bytes.Lines(cfg) {
		n++
		f := strings.Fields(string(line))
		if len(f) == 0 || !sectionKeywords[f[0]] {
			continue
		}
		if len(out) > 0 {
			out[len(out)-1].last = n - 1
		}
		s := section{kind: f[0], first: n, last: n}
		if len(f) > 1 {
			s.name = f[1]
		}
		out = append(out, s)
	}
	if len(out) > 0 {
		out[len(out)-1].last = n
	}
	return out
}

// sectionAt returns the section holding line n of the configuration secs
// came from.
func sectionAt(secs []section, n int) (section, bool) {
	i := sort.Search(len(secs), func(i int) bool { return secs[i].last >= n })
	if i == len(secs) || n < secs[i].first {
		return section{}, false
	}
	return secs[i], true
}

// lineAt returns line n (1-based) of cfg without its line ending, or "".
func lineAt(cfg []byte, n int) string {
	i := 0
	for line := range bytes.Lines(cfg) {
		i++
		if i == n {
			return strings.TrimRight(string(line), "\r\n")
		}
	}
	return ""
}

// sectionLines returns the trimmed, non-empty lines of the sections named
// name in cfg, the section headers excluded.
func sectionLines(cfg []byte, name string) map[string]bool {
	out := map[string]bool{}
	in := false
	for line := range bytes.Lines(cfg) {
		t := strings.TrimSpace(string(line))
		f := strings.Fields(t)
		if len(f) > 0 && sectionKeywords[f[0]] {
			in = len(f) > 1 && f[1] == name
			continue
		}
		if in && t != "" {
			out[t] = true
		}
	}
	return out
}

// proxyKeywords open the sections whose set sectionsChanged compares.
var proxyKeywords = []string{"frontend", "backend", "listen", "userlist"}

// sectionHeaders returns the "keyword name" of every frontend, backend,
// listen and userlist section of cfg whose header starts a line, in order.
func sectionHeaders(cfg []byte) []string {
	var out []string
	for pos := 0; pos < len(cfg); {
		end := bytes.IndexByte(cfg[pos:], '\n')
		if end < 0 {
			end = len(cfg)
		} else {
			end += pos
		}
		line := cfg[pos:end]
		if len(line) > 0 && line[0] >= 'b' && line[0] <= 'u' {
			for _, k := range proxyKeywords {
				if bytes.HasPrefix(line, []byte(k)) && len(line) > len(k) && (line[len(k)] == ' ' || line[len(k)] == '\t') {
					f := strings.Fields(string(line))
					if len(f) >= 2 {
						out = append(out, f[0]+" "+f[1])
					}
					break
				}
			}
		}
		pos = end + 1
	}
	return out
}

// sectionsChanged says which frontend, backend, listen or userlist section
// cfg adds to or removes from old ("frontend x added"), or "" when they
// have the same ones. Such a change always needs a reload, which this
// finds in milliseconds where haproxy.Diff reads both files in full.
func sectionsChanged(old, cfg []byte) string {
	oh, nh := sectionHeaders(old), sectionHeaders(cfg)
	had := make(map[string]bool, len(oh))
	for _, h := range oh {
		had[h] = true
	}
	has := make(map[string]bool, len(nh))
	for _, h := range nh {
		has[h] = true
		if !had[h] {
			return h + " added"
		}
	}
	for _, h := range oh {
		if !has[h] {
			return h + " removed"
		}
	}
	return ""
}
