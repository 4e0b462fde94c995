package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReport(t *testing.T) {
	tests := []struct {
		name     string
		events   string
		wantCode int
		want     []string
	}{
		{
			name: "all pass",
			events: `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"noise\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Elapsed":0.5}`,
			want: []string{"ok  \tp\t0.500s", "1 passed, 0 failed, 0 skipped"},
		},
		{
			name: "a failure prints the test's output",
			events: `{"Action":"output","Package":"p","Test":"TestB","Output":"boom at x.go:3\n"}
{"Action":"fail","Package":"p","Test":"TestB"}
{"Action":"fail","Package":"p","Elapsed":1}`,
			wantCode: 1,
			want:     []string{"--- FAIL: p TestB", "boom at x.go:3", "FAIL\tp", "0 passed, 1 failed, 0 skipped"},
		},
		{
			name: "a skip for a missing prerequisite fails the run",
			events: `{"Action":"output","Package":"p","Test":"TestC","Output":"--- SKIP: TestC (0.00s)\n"}
{"Action":"output","Package":"p","Test":"TestC","Output":"    x_test.go:9: prerequisite missing (skipped under -short): haproxy\n"}
{"Action":"skip","Package":"p","Test":"TestC"}
{"Action":"pass","Package":"p","Elapsed":0}`,
			wantCode: 1,
			want:     []string{"p TestC: x_test.go:9: prerequisite missing", "1 tests were skipped for a missing prerequisite", "0 passed, 0 failed, 1 skipped"},
		},
		{
			name: "another skip is listed but allowed",
			events: `{"Action":"output","Package":"p","Test":"TestD","Output":"    x_test.go:9: SKIP_DOCKER=1: left out\n"}
{"Action":"skip","Package":"p","Test":"TestD"}
{"Action":"pass","Package":"p","Elapsed":0}`,
			want: []string{"p TestD: x_test.go:9: SKIP_DOCKER=1: left out", "0 passed, 0 failed, 1 skipped"},
		},
		{
			name:     "a build failure fails the run",
			events:   "# p\nx.go:1: syntax error\n" + `{"Action":"fail","Package":"p","Elapsed":0}`,
			wantCode: 1,
			want:     []string{"x.go:1: syntax error", "FAIL\tp", "0 passed, 1 failed, 0 skipped"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &report{out: map[testKey]*strings.Builder{}}
			assert.NoError(t, r.read(strings.NewReader(tt.events)))
			var b strings.Builder
			assert.Equal(t, tt.wantCode, r.print(&b))
			for _, w := range tt.want {
				assert.Contains(t, b.String(), w)
			}
		})
	}
}
