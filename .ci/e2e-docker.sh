#!/usr/bin/env bash
# Docker end-to-end test (issue 4): builds the images with .ci/images.sh,
# then runs the operator walkthrough on a cluster of containers (one
# scheduler, two agents each with an LB in its network namespace) and
# prints the measured convergence times and failed requests.
# Topology and choices: docs/docker.md. Needs root, Docker and `ip`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

if ! docker info >/dev/null 2>&1; then
  echo "e2e-docker: no Docker engine answers" >&2
  exit 1
fi
bash .ci/images.sh

report=$(mktemp)
trap 'rm -f "$report"' EXIT
status=0
E2E_REPORT=$report go test -tags e2e_docker -run '^TestClusterE2E$' -count=1 -timeout 20m -v \
  ./scheduler/agent/driver/docker/ || status=$?
echo
if [ -s "$report" ]; then cat "$report"; fi
exit $status
