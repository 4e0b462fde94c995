#!/usr/bin/env bash
# Runs README's first command, `make run`, as a newcomer would, and checks
# what the README promises: the sample app answers through HAProxy on its
# servicePort (both tasks, round robin) and on :80 by vhost, the stats page,
# the v2 API and the web UI answer, and Ctrl-C stops everything.
#
# .ci/run calls it on a machine where HAProxy was just removed and with an
# empty GOPATH and GOCACHE, so `make run` must install HAProxy and build
# everything from nothing. It runs in the machine's own network namespace
# (installing HAProxy needs Debian's mirror, which a private namespace
# cannot reach), so :80, :8080, :9090 and :10000 must be free; it says so
# and stops when one is not. Needs root (:80, apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

log=$(mktemp)
pidfile=$log.pid
sid=
cleanup() {
  if [ -n "$sid" ]; then pkill -KILL -s "$sid" 2>/dev/null || true; fi
  rm -f "$log" "$pidfile"
}
trap cleanup EXIT

busy=$(ss -Htln '( sport = :80 or sport = :8080 or sport = :9090 or sport = :10000 )' 2>/dev/null || true)
if [ -n "$busy" ]; then
  echo "demo-check: a port the demo needs is taken:"; echo "$busy"; exit 1
fi

started=$(date +%s)
# setsid: make, go build and switchyard share one session that we can
# find and end as a whole.
setsid bash -c 'echo $$ >"$1"; exec make run' _ "$pidfile" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do [ -s "$pidfile" ] && break; sleep 0.1; done
sid=$(cat "$pidfile")

# Wait for the banner (printed once the sample app answers through
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
tasks=$(for _ in 1 2 3 4 5 6; do curl -s -D - -o /dev/null http://127.0.0.1:10000/ | tr -d '\r' | sed -n 's/^X-Task-Id: //Ip'; done | sort -u | wc -l)
check "servicePort :10000 answers through HAProxy" "HELLO FROM SWITCHYARD" curl -s http://127.0.0.1:10000/
check "round robin over the 2 tasks" "2" echo "$tasks"
check "vhost on :80" "HELLO FROM SWITCHYARD" curl -s -H 'Host: hello.switchyard.local' http://127.0.0.1/
check "unknown vhost on :80 gets 503" "503" curl -s -o /dev/null -w '%{http_code}' -H 'Host: nope.example.com' http://127.0.0.1/
check "stats page" "hello_10000" curl -s 'http://127.0.0.1:9090/haproxy?stats'
check "Marathon v2 API" '"id":"/hello"' curl -s http://127.0.0.1:8080/v2/apps/hello
check "web UI" "Switchyard" curl -s http://127.0.0.1:8080/ui/
check "HAProxy was installed" "haproxy" command -v haproxy

# Ctrl-C in a terminal interrupts make too, which then exits 130 whatever
# its recipe did; interrupt switchyard alone to see its own exit status.
sy=$(pgrep -s "$sid" -x switchyard | head -n 1 || true)
if [ -z "$sy" ]; then echo "FAIL no switchyard process in the session"; cat "$log"; exit 1; fi
kill -INT "$sy"
for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  echo "FAIL Ctrl-C: still running after 60 s"; fail=1
else
  status=0; wait "$pid" || status=$?
  if [ $status -eq 0 ]; then echo "ok   Ctrl-C stops it (exit 0)"; else echo "FAIL Ctrl-C: exit $status"; tail -20 "$log"; fail=1; fi
fi
left=$(pgrep -s "$sid" | wc -l || true)
check "nothing left running" "0" echo "$left"
tasksleft=$(pgrep -f 'bin/switchyard hello' | wc -l || true)
check "the sample app's tasks are stopped" "0" echo "$tasksleft"
sid=
if [ $fail -ne 0 ]; then
  echo "--- make run output"; cat "$log"
fi
exit $fail
