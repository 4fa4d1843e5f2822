#!/usr/bin/env bash
# Builds the netalias image the way CI can: a static binary on the host, packed by the
# Dockerfile's `local` target (no registry needed). Tags it `netalias` (the name
# config/compose.yaml, config/stack.toml and the README use) unless told otherwise; the tests
# build theirs as netalias:test (tests/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-netalias}"
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --profile dist --target x86_64-unknown-linux-gnu --locked
# The Dockerfile packs target/…/dist/netalias from the build context: bring it there when
# CARGO_TARGET_DIR put it elsewhere.
built="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/dist/netalias"
packed="target/x86_64-unknown-linux-gnu/dist/netalias"
if [ "$(realpath -m "$built")" != "$(realpath -m "$packed")" ]; then
  mkdir -p "$(dirname "$packed")"
  cp "$built" "$packed"
fi
docker build --quiet --target local -t "$tag" . >/dev/null
echo "built $tag: $(docker image inspect -f '{{.Size}}' "$tag") bytes"
