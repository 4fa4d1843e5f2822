#!/usr/bin/env bash
# Builds the tests' and benches' container image, netalias-test/busybox:1, from Debian's
# busybox-static when it is not there yet (no registry is needed: `docker import` of a tarball).
set -euo pipefail
IMAGE=netalias-test/busybox:1
docker image inspect "$IMAGE" >/dev/null 2>&1 && exit 0
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/root/bin" "$dir/root/tmp"
cp /bin/busybox "$dir/root/bin/"
for applet in sh sleep touch rm test cat true false; do ln -s busybox "$dir/root/bin/$applet"; done
tar -C "$dir/root" -cf "$dir/image.tar" .
docker import -c 'CMD ["/bin/sh"]' "$dir/image.tar" "$IMAGE" >/dev/null
echo "built $IMAGE"
