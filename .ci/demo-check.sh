#!/usr/bin/env bash
# Runs README's first command, `make run`, as a newcomer would, inside a
# private network namespace (so :80, :8080, :9090 and :10000 are its own),
# and checks what the README promises: the sample app answers through
# HAProxy on its servicePort (both tasks, round robin) and on :80 by vhost,
# the stats page and the v2 API answer, and Ctrl-C stops everything.
#
# .ci/run calls it on a machine where HAProxy was just removed and with an
# empty GOPATH and GOCACHE, so `make run` must install HAProxy and build
# everything from nothing. Needs root (network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

ns=sy-demo-$$
log=$(mktemp)
cleanup() {
  if [ -n "${pgid:-}" ]; then kill -KILL -- "-$pgid" 2>/dev/null || true; fi
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  ip netns delete "$ns" 2>/dev/null || true
  rm -f "$log" "$log.pid"
}
trap cleanup EXIT
in_ns() { ip netns exec "$ns" "$@"; }

ip netns add "$ns"
in_ns ip link set lo up

started=$(date +%s)
# setsid: make, go run and switchyard share one process group that we can
# interrupt as a terminal's Ctrl-C would.
pidfile=$log.pid
in_ns setsid bash -c 'echo $$ >"$1"; exec make run' _ "$pidfile" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do [ -s "$pidfile" ] && break; sleep 0.1; done
pgid=$(cat "$pidfile")

# Wait for the banner (it is printed once the sample app answers through
# HAProxy), for make to fail, or for a generous cap on a slow machine.
while ! grep -q 'Ctrl-C stops everything' "$log"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "make run exited before the demo was up:"; cat "$log"; exit 1
  fi
  if [ $(( $(date +%s) - started )) -gt 900 ]; then
    echo "make run: no banner after 15 minutes:"; cat "$log"; exit 1
  fi
  sleep 1
done
up=$(( $(date +%s) - started ))
echo "make run: up after ${up} s (HAProxy install + build from an empty cache + start)"
grep -E 'installing from|Switchyard is up|curl ' "$log" || true

fail=0
check() { # check WHAT WANT CMD...: CMD's output must contain WANT
  local what=$1 want=$2; shift 2
  local got
  got=$("$@" 2>&1) || true
  if [[ "$got" == *"$want"* ]]; then
    echo "ok   $what"
  else
    echo "FAIL $what: want '$want', got: ${got:0:300}"; fail=1
  fi
}
tasks=$(for _ in 1 2 3 4 5 6; do in_ns curl -s -D - -o /dev/null http://127.0.0.1:10000/ | tr -d '\r' | sed -n 's/^X-Task-Id: //Ip'; done | sort -u | wc -l)
check "servicePort :10000 answers through HAProxy" "HELLO FROM SWITCHYARD" in_ns curl -s http://127.0.0.1:10000/
check "round robin over the 2 tasks" "2" echo "$tasks"
check "vhost on :80" "HELLO FROM SWITCHYARD" in_ns curl -s -H 'Host: hello.switchyard.local' http://127.0.0.1/
check "unknown vhost on :80 gets 503" "503" in_ns curl -s -o /dev/null -w '%{http_code}' -H 'Host: nope.example.com' http://127.0.0.1/
check "stats page" "hello_10000" in_ns curl -s 'http://127.0.0.1:9090/haproxy?stats'
check "Marathon v2 API" '"id":"/hello"' in_ns curl -s http://127.0.0.1:8080/v2/apps/hello
check "HAProxy was installed" "haproxy" command -v haproxy

# Ctrl-C in a terminal interrupts make too, which then exits 130 whatever
# its recipe did; interrupt switchyard alone to see its own exit status.
sy=
for p in $(ip netns pids "$ns"); do
  if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = switchyard ]; then sy=$p; break; fi
done
if [ -z "$sy" ]; then echo "FAIL no switchyard process in the namespace"; cat "$log"; exit 1; fi
kill -INT "$sy"
for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  echo "FAIL Ctrl-C: still running after 60 s"; fail=1
else
  status=0; wait "$pid" || status=$?
  if [ $status -eq 0 ]; then echo "ok   Ctrl-C stops it (exit 0)"; else echo "FAIL Ctrl-C: exit $status"; tail -20 "$log"; fail=1; fi
fi
pgid=
left=$(ip netns pids "$ns" | wc -l)
check "nothing left running in the namespace" "0" echo "$left"
if [ $fail -ne 0 ]; then
  echo "--- make run output"; cat "$log"
fi
exit $fail
