#!/usr/bin/env bash
# Builds netalias-test/clients:1: busybox plus three real resolver clients linked statically
# from tests/clients/ (glibc's getaddrinfo, musl's, Go's pure resolver), so tests resolve as
# real programs do. Nothing is pulled: `docker import` of a tarball. Rebuilt when the sources
# change (the image carries their hash as a label).
set -euo pipefail
cd "$(dirname "$0")"
IMAGE=netalias-test/clients:1
sum=$(cat clients/resolve.c clients/resolve.go | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{index .Config.Labels "netalias.clients"}}' "$IMAGE" 2>/dev/null)" = "$sum" ]; then
  exit 0
fi
missing=()
command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/root/bin" "$dir/root/tmp" "$dir/root/etc"
cp /bin/busybox "$dir/root/bin/"
for applet in sh sleep cat echo true false grep; do ln -s busybox "$dir/root/bin/$applet"; done
# glibc warns that a static getaddrinfo wants the build's NSS modules; dns and files are
# built into glibc since 2.34, which is all these lookups use.
gcc -static -O2 -o "$dir/root/bin/resolve-glibc" clients/resolve.c 2>"$dir/gcc.err" \
  || { cat "$dir/gcc.err" >&2; exit 1; }
musl-gcc -static -O2 -o "$dir/root/bin/resolve-musl" clients/resolve.c
GOCACHE="$dir/gocache" GOPATH="$dir/gopath" GOFLAGS=-mod=mod CGO_ENABLED=0 \
  go build -trimpath -o "$dir/root/bin/resolve-go" clients/resolve.go
echo 'hosts: files dns' >"$dir/root/etc/nsswitch.conf"
tar -C "$dir/root" -cf "$dir/image.tar" .
docker import -c 'CMD ["/bin/sh"]' -c "LABEL netalias.clients=$sum" "$dir/image.tar" "$IMAGE" >/dev/null
echo "built $IMAGE"
