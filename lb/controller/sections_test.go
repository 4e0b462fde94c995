package controller

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSectionAt(t *testing.T) {
	cfg := []byte(`# comment
global
  log stdout

defaults
  mode http
frontend marathon_http_in
  bind *:80
  acl host_a hdr(host) -i a
  use_backend a_10000 if host_a
backend a_10000
  balance roundrobin
userlist user_b_10001
  user u password p
`)
	secs := sectionsOf(cfg)
	tests := []struct {
		line       int
		kind, name string
		ok         bool
	}{
		{line: 1, ok: false},
		{line: 2, kind: "global", ok: true},
		{line: 4, kind: "global", ok: true},
		{line: 5, kind: "defaults", ok: true},
		{line: 7, kind: "frontend", name: "marathon_http_in", ok: true},
		{line: 10, kind: "frontend", name: "marathon_http_in", ok: true},
		{line: 11, kind: "backend", name: "a_10000", ok: true},
		{line: 12, kind: "backend", name: "a_10000", ok: true},
		{line: 14, kind: "userlist", name: "user_b_10001", ok: true},
		{line: 15, ok: false},
		{line: 0, ok: false},
	}
	for _, tc := range tests {
		s, ok := sectionAt(secs, tc.line)
		assert.Equal(t, tc.ok, ok, "line %d", tc.line)
		assert.Equal(t, tc.kind, s.kind, "line %d", tc.line)
		assert.Equal(t, tc.name, s.name, "line %d", tc.line)
	}
	assert.Equal(t, "  use_backend a_10000 if host_a", lineAt(cfg, 10))
	assert.Equal(t, "", lineAt(cfg, 99))
	assert.Equal(t, map[string]bool{"bind *:80": true, "acl host_a hdr(host) -i a": true, "use_backend a_10000 if host_a": true},
		sectionLines(cfg, "marathon_http_in"))
}

func TestSectionsChanged(t *testing.T) {
	base := "global\n  daemon\n\nfrontend a\n  bind :80\n\nbackend a\n  server s 1.2.3.4:80\n"
	tests := []struct {
		name, old, new, want string
	}{
		{"same", base, base, ""},
		{"servers only", base, strings.Replace(base, "1.2.3.4", "1.2.3.5", 1), ""},
		{"backend added", base, base + "\nbackend b\n  server s 1.2.3.4:80\n", "backend b added"},
		{"frontend removed", base, strings.Replace(base, "frontend a\n  bind :80\n", "", 1), "frontend a removed"},
		{"renamed", base, strings.Replace(base, "backend a", "backend c", 1), "backend c added"},
		{"an indented keyword is not a header", base, base + "  backend-x y\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, sectionsChanged([]byte(tt.old), []byte(tt.new)))
		})
	}
}
