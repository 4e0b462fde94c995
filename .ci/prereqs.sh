#!/usr/bin/env bash
# Installs what README's commands need, from Debian's packages, when it is
# missing:
#
#   .ci/prereqs.sh run    HAProxy (the demo)
#   .ci/prereqs.sh test   HAProxy, iproute2 (ip netns), python3, curl, git,
#                         chromium (the web UI's browser tests), dig (dnsutils)
#                         zookeeper and a JRE (the HA scheduler tests)
#
# As root it runs apt-get; as anyone else it prints the one command to run
# and exits 1. Nothing is installed that is already there.
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

what=${1:?usage: prereqs.sh run|test}

# need[i] is a Debian package; have[i] is how we tell it is installed.
pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
case $what in
  run)
    have haproxy || pkgs+=(haproxy)
    ;;
  test)
    have haproxy || pkgs+=(haproxy)
    have ip || pkgs+=(iproute2)
    have python3 || pkgs+=(python3)
    have curl || pkgs+=(curl)
    have git || pkgs+=(git)
    have chromium || pkgs+=(chromium)
    have dig || pkgs+=(dnsutils)
    # The HA tests start a real ensemble from Debian's jar (it pulls a JRE).
    [ -f /usr/share/java/zookeeper.jar ] || pkgs+=(zookeeper)
    have java || pkgs+=(default-jre-headless)
    ;;
  *)
    echo "usage: prereqs.sh run|test" >&2
    exit 2
    ;;
esac
have go || { echo "Go is missing: install Go $(sed -n 's/^go //p' "$(dirname "$0")/../go.mod") or newer (https://go.dev/doc/install)" >&2; exit 1; }

if [ ${#pkgs[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing: ${pkgs[*]}. Install them first, then run this again:" >&2
  echo "  sudo apt-get install -y ${pkgs[*]}" >&2
  exit 1
fi
if ! have apt-get; then
  echo "missing: ${pkgs[*]}, and there is no apt-get here: install them with your package manager" >&2
  exit 1
fi
echo "installing from Debian's packages: ${pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; an old list may name versions
# that are gone, so on a failed install refresh and try once more.
if ! apt-get install -y -qq "${pkgs[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
for p in "${pkgs[@]}"; do
  case $p in
    iproute2) have ip ;;
    dnsutils) have dig ;;
    zookeeper) [ -f /usr/share/java/zookeeper.jar ] ;;
    default-jre-headless) have java ;;
    *) have "$p" ;;
  esac || { echo "installed $p but it is still not on PATH" >&2; exit 1; }
done
