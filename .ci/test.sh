#!/usr/bin/env bash
# README's second command (`make test`): installs the test prerequisites
# (.ci/prereqs.sh test), then runs everything CI runs:
#
#   gofmt, go vet, go test -race over the whole module (every integration
#   test against the real HAProxy, in private network namespaces), the
#   go-marathon compatibility module, a short fuzz burst per fuzz target,
#   and the Docker walkthrough when a Docker engine answers.
#
# A missing prerequisite fails the run with a message; nothing is skipped
# quietly. The only ways to run less are explicit:
#   SHORT=1            go test -short: unit tests only (no root, no HAProxy)
#   SKIP_DOCKER=1      leave out the Docker tests (said loudly in the output)
#   FUZZTIME=30s       a longer fuzz burst per target (default 10s)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

step() { printf '\n=== %s (%s)\n' "$*" "$(date -u +%T)"; }
started=$(date +%s)

if [ "${SHORT:-}" = 1 ]; then
  step "go test -short (SHORT=1: unit tests only)"
  go test -short -count=1 ./...
  exit 0
fi

step "prerequisites"
if [ "$(id -u)" -ne 0 ]; then
  echo "the full suite needs root: its integration tests run HAProxy in private network namespaces" >&2
  echo "  sudo make test        # everything, as CI runs it" >&2
  echo "  SHORT=1 make test     # unit tests only, as any user" >&2
  exit 1
fi
bash .ci/prereqs.sh test
docker_tests=yes
if [ "${SKIP_DOCKER:-}" = 1 ]; then
  docker_tests="no (SKIP_DOCKER=1)"
elif ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "no Docker engine answers here (docker info failed)." >&2
  echo "Start one, or run SKIP_DOCKER=1 make test to leave the Docker tests out." >&2
  exit 1
fi
if [ "$docker_tests" != yes ]; then
  export SKIP_DOCKER=1
  echo "!!! Docker tests are LEFT OUT: $docker_tests"
fi
haproxy -v | head -1
go version

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "go test -race -count=1 ./..."
# -json lets .ci/testreport print each failed test's output and refuse any
# test skipped for a missing prerequisite.
report=$(mktemp -d)
trap 'rm -rf "$report"' EXIT
status=0
go test -race -count=1 -timeout 30m -json ./... >"$report/test.json" 2>"$report/build.err" || status=$?
cat "$report/build.err" >&2
go test -count=1 ./.ci/testreport >/dev/null || { echo "testreport is broken"; exit 1; }
go run ./.ci/testreport <"$report/test.json" || status=1
[ $status -eq 0 ] || exit $status

step "go-marathon compatibility (separate module)"
bash .ci/compat.sh

step "fuzz bursts"
bash .ci/fuzz "${FUZZTIME:-10s}"

if [ "$docker_tests" = yes ]; then
  step "docker end-to-end"
  bash .ci/e2e-docker.sh
fi
step "all passed in $(( $(date +%s) - started )) s"
