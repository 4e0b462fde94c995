#!/usr/bin/env bash
# Builds the Switchyard Docker images on a machine with NO registry:
#
#   switchyard/lb:TAG       entrypoint `lb` + Debian's HAProxy (Dockerfile)
#   switchyard/cluster:TAG  scheduler, agent, switchyard, lb + HAProxy (testdata/docker/cluster.Dockerfile)
#   switchyard/testweb:TAG  static web server used in place of httpd (cmd/testweb/Dockerfile)
#
# Every image is FROM scratch. Go binaries are built static (CGO_ENABLED=0);
# HAProxy, which Debian links dynamically, is copied into the image rootfs
# together with the shared libraries `ldd` lists and the dynamic loader
# (dash comes along as /bin/sh the same way). Nothing is pulled.
#
# Usage: .ci/images.sh [IMAGE...]     IMAGE: lb cluster testweb (default: all)
# Env:   TAG (default dev; every image is also tagged :latest, so the
#        README's `docker run ... switchyard/lb sse ...` works word for word);
#        VERSION (what `lb --version` etc. print first; default: `git describe
#        --always --dirty`, else TAG); HAPROXY (default: `command -v haproxy`).
#
# Binaries that do not build yet are reported and left out; an image whose
# main binary is missing is skipped. The exit status is non-zero only when
# `docker build` itself fails or a requested image could not be built at all.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

tag=${TAG:-dev}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo "$tag")}
ldflags="-s -w -X github.com/switchyard/switchyard/cmd/internal/cliutil.version=$version"
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(lb cluster testweb)
haproxy_bin=${HAPROXY:-$(command -v haproxy || true)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$work/bin
mkdir -p "$bin"
start=$(date +%s)
status=0
built=()
skipped=()

log() { printf '[images] %s\n' "$*"; }

# gobuild NAME: builds ./cmd/NAME statically into $bin/NAME.
gobuild() {
  local name=$1
  [ -x "$bin/$name" ] && return 0
  if ! ls "cmd/$name"/*.go >/dev/null 2>&1; then
    log "cmd/$name: no Go files yet, left out"
    return 1
  fi
  if CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" -o "$bin/$name" "./cmd/$name" 2>"$work/$name.err"; then
    return 0
  fi
  log "cmd/$name does not build, left out:"
  sed 's/^/    /' "$work/$name.err" | head -20
  return 1
}

# add_elf ROOT FILE: copies FILE and every shared library it needs (plus
# the loader) into ROOT at the same paths, resolving symlinks.
add_elf() {
  local root=$1 f=$2 lib
  install -D -m 0755 "$(readlink -f "$f")" "$root$f"
  ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3; next} $1 ~ /^\// {print $1}' | while read -r lib; do
    [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# base_rootfs ROOT: HAProxy, /bin/sh and the few files and directories
# HAProxy and lb expect.
base_rootfs() {
  local root=$1
  if [ -z "$haproxy_bin" ] || [ ! -x "$haproxy_bin" ]; then
    log "haproxy not found (install Debian's haproxy package or set HAPROXY)"
    return 1
  fi
  mkdir -p "$root"/{etc/haproxy,tmp,run/haproxy,var/lib/haproxy,var/state/haproxy,var/run,usr/local/bin,dev}
  chmod 1777 "$root/tmp"
  add_elf "$root" "$haproxy_bin"
  [ "$haproxy_bin" = /usr/sbin/haproxy ] || install -D -m 0755 "$root$haproxy_bin" "$root/usr/sbin/haproxy"
  add_elf "$root" "$(readlink -f /bin/sh)"
  mkdir -p "$root/bin"
  [ "$(readlink -f /bin/sh)" = /bin/sh ] || ln -sf "$(readlink -f /bin/sh)" "$root/bin/sh"
  cat >"$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
haproxy:x:99:99:haproxy:/var/lib/haproxy:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
P
  cat >"$root/etc/group" <<'G'
root:x:0:
haproxy:x:99:
nogroup:x:65534:
G
  printf 'hosts: files dns\npasswd: files\ngroup: files\n' >"$root/etc/nsswitch.conf"
  # Prove the copied libraries are complete before building an image.
  if ! chroot "$root" /usr/sbin/haproxy -v >/dev/null || ! chroot "$root" /bin/sh -c true; then
    log "haproxy or /bin/sh does not run inside the assembled rootfs"
    return 1
  fi
}

# dockerbuild IMAGE DOCKERFILE CONTEXT
dockerbuild() {
  local image=$1 dockerfile=$2 ctx=$3
  cp "$dockerfile" "$ctx/Dockerfile"
  if DOCKER_BUILDKIT=0 docker build -q -t "$image" -t "${image%:*}:latest" "$ctx" >"$work/build.out" 2>&1; then
    log "built $image ($(du -sh "$ctx/rootfs" | cut -f1) rootfs)"
    built+=("$image")
  else
    log "docker build $image failed:"
    sed 's/^/    /' "$work/build.out"
    status=1
  fi
}

for img in "${images[@]}"; do
  ctx=$work/ctx-$img
  mkdir -p "$ctx"
  case $img in
  lb)
    if ! gobuild lb; then skipped+=("switchyard/lb:$tag (cmd/lb missing)"); status=1; continue; fi
    base_rootfs "$ctx/rootfs" || { skipped+=("switchyard/lb:$tag (no haproxy)"); status=1; continue; }
    install -m 0755 "$bin/lb" "$ctx/rootfs/usr/local/bin/lb"
    dockerbuild "switchyard/lb:$tag" Dockerfile "$ctx"
    ;;
  cluster)
    base_rootfs "$ctx/rootfs" || { skipped+=("switchyard/cluster:$tag (no haproxy)"); status=1; continue; }
    have=()
    for b in scheduler agent switchyard lb; do
      if gobuild "$b"; then
        install -m 0755 "$bin/$b" "$ctx/rootfs/usr/local/bin/$b"
        have+=("$b")
      fi
    done
    if [ ${#have[@]} -eq 0 ]; then skipped+=("switchyard/cluster:$tag (no binary builds)"); status=1; continue; fi
    log "cluster image binaries: ${have[*]}"
    dockerbuild "switchyard/cluster:$tag" testdata/docker/cluster.Dockerfile "$ctx"
    ;;
  testweb)
    if ! gobuild testweb; then skipped+=("switchyard/testweb:$tag"); status=1; continue; fi
    mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/usr/local/apache2/htdocs" "$ctx/rootfs/tmp"
    chmod 1777 "$ctx/rootfs/tmp"
    install -m 0755 "$bin/testweb" "$ctx/rootfs/usr/local/bin/testweb"
    printf '<html><body><h1>It works!</h1></body></html>\n' >"$ctx/rootfs/usr/local/apache2/htdocs/index.html"
    dockerbuild "switchyard/testweb:$tag" cmd/testweb/Dockerfile "$ctx"
    ;;
  *)
    log "unknown image $img (want lb, cluster or testweb)"
    exit 2
    ;;
  esac
done

log "done in $(($(date +%s) - start))s; built: ${built[*]:-none}"
[ ${#skipped[@]} -eq 0 ] || log "not built: ${skipped[*]}"
exit $status
