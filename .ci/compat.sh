#!/usr/bin/env bash
# Compatibility test with a Marathon client nobody here wrote:
# github.com/gambol99/go-marathon v0.7.1 drives the real scheduler and one
# real agent (built from the main module). testdata/compat is its own Go
# module, so the client never enters the main module's go.mod; the Go
# module proxy serves it (go.sum is committed).
set -euo pipefail
cd "$(dirname "$0")/../testdata/compat"
export PATH=$PATH:/usr/local/go/bin
export CI="${CI:-true}"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go test -count=1 -timeout 5m ./...
