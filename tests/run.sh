#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs every check.
# Usage: bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v kdig >/dev/null 2>&1 || missing+=(knot-dnsutils)
# The Docker tests build their image from a static busybox; nsenter comes with util-linux.
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
command -v dnsmasq >/dev/null 2>&1 || missing+=(dnsmasq-base)
# A GET-only proxy in front of the engine (tests/engine_proxy.rs).
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
# A second engine speaking the Docker API (tests/podman.rs).
command -v podman >/dev/null 2>&1 || missing+=(podman)
# The host-service unit is checked with systemd-analyze verify (tests/systemd.rs).
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# Real resolver clients, linked statically in tests/build-client-image.sh: musl's getaddrinfo
# and Go's pure resolver (glibc's comes with gcc); compose for tests/compose.rs.
command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The image the sidecar test runs (static binary + Dockerfile `local` target).
if docker info >/dev/null 2>&1; then bash tests/build-image.sh netalias:test; fi
# Each criterion bench once, as a smoke test; then the unit and integration tests.
cargo test --benches --locked
cargo test --lib --bins --tests --locked
# A short fuzz smoke of every target (FUZZ_SECONDS each, 0 skips): cargo-fuzz is installed
# from crates.io when missing.
fuzz_seconds=${FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" -gt 0 ]; then
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
  bash tests/fuzz/run.sh "$fuzz_seconds"
fi
