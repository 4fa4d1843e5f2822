#!/usr/bin/env bash
# Regenerates src/text-order.txt: the functions the shipped binary runs as it starts and serves,
# which build.rs hands the linker (lld's --symbol-ordering-file) so that they sit together in the
# binary's text. The kernel maps a binary in 64-128 KB windows around each page a process
# touches; with these functions spread over 9 MB of text, a server that runs 1.5 MB of them
# had 6.6 MB of its binary resident (memory.sh), and 3.1 MB with them together.
#
# How: an unstripped build of the dist profile (the shipped binary's, with the file it is
# regenerating: its symbols are named as without it) runs under callgrind through
#   1. the embedded-default shape with 1,000 static endpoints: A, AAAA, PTR, SRV, TXT, SOA, NS,
#      NXDOMAIN and wildcard questions over UDP and TCP, and a reload of the file;
#   2. forwarding to a local dnsmasq (a name it does not own, UDP and TCP);
#   3. `--docker` against this machine's engine (its list, events and snapshot; with no
#      containers of its own), when `docker info` answers;
#   4. `check-config` and `health --ready` (the image's health check);
# and every function callgrind saw run is written out, mangled, one a line, after a header
# naming the rustc it was made with. Symbol names change with the toolchain (src/build.rs warns
# when the build's rustc is another) and with the dependencies' versions: regenerate after
# updating either. A name the binary no longer has is skipped; the file pages memory.sh reports
# show what is lost.
#
# Usage: bash benches/text-order.sh. Needs valgrind, kdig, dnsmasq; loopback only
# (127.0.0.1, ports 15381-15383) and this machine's engine at its unix socket (DOCKER_HOST and
# NETALIAS_* settings from the environment are dropped). Takes a few minutes (the build).
# Everything it starts is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
for name in $(env | sed -n 's/^\(NETALIAS_[A-Z0-9_]*\|DOCKER_[A-Z0-9_]*\)=.*/\1/p'); do unset "$name"; done
for tool in valgrind kdig dnsmasq nm; do
  command -v "$tool" >/dev/null || { echo "text-order: needs $tool (apt-get install valgrind knot-dnsutils dnsmasq-base binutils)" >&2; exit 1; }
done
target="${CARGO_TARGET_DIR:-target}/text-order"
# The shipped build's profile and flags, and `-C strip=none` last (rustc takes the last): the
# symbols stay, named as in the shipped binary. With the profile's `strip` changed instead, every
# name's hash changed (cargo hashes the profile into the crates' metadata; not RUSTFLAGS) and
# none matched the shipped build's.
CARGO_TARGET_DIR="$target" RUSTFLAGS="-C target-feature=+crt-static -C strip=none" \
  cargo build --profile dist --target x86_64-unknown-linux-gnu --locked --quiet
bin="$target/x86_64-unknown-linux-gnu/dist/netalias"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && kill "$p" 2>/dev/null; done
  rm -rf "$work" src/text-order.txt.new
  return 0
}
trap cleanup EXIT
NA=15381 HTTP=15382 UP=15383

# Runs BIN under callgrind (its output to work/cg.N); the caller stops it.
traced() { # N ARGS...
  local n=$1
  shift
  NETALIAS_LOG=warn valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.$n" \
    "$bin" "$@" >"$work/log.$n" 2>&1 &
  pids+=($!)
  tpid=$!
}
answers() { # PORT NAME -> waits up to 60 s (callgrind is slow) for an answer to NAME
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ -n "$(kdig @127.0.0.1 -p "$1" +short +time=1 +retry=0 "$2" A 2>/dev/null)" ] && return 0
    sleep 0.2
  done
  echo "text-order: nothing answered $2 on port $1; its log:" >&2
  tail -5 "$work"/log.* >&2
  exit 1
}
stop() { # PID: SIGTERM, as docker stop sends; callgrind writes its file as the process exits
  kill -TERM "$1" 2>/dev/null || { echo "text-order: the traced server had already exited; its log:" >&2; tail -5 "$work"/log.* >&2; exit 1; }
  wait "$1" 2>/dev/null || true
}

# 1. Static endpoints, the questions, a reload.
sed "s/127.0.0.1:1053/127.0.0.1:$NA/" config/netalias.toml >"$work/c.toml"
awk 'BEGIN { print "\n[networks.scale]"; for (i = 0; i < 1000; i++)
  printf "[[networks.scale.endpoints]]\nname = \"e%d\"\nipv4 = \"10.100.%d.%d\"\n", i, int(i / 256), i % 256 }' >>"$work/c.toml"
traced 1 serve --config "$work/c.toml" --http-listen "127.0.0.1:$HTTP"
answers "$NA" e999
for q in "e5 A" "E5.Scale A" "web1.docker A" "e5 AAAA" "nothere.docker A" "2.0.100.10.in-addr.arpa PTR" \
  "app.docker A" "app.docker A" "_http._tcp.app.docker SRV" "e7 TXT" "x.y.z.scale A" "scale SOA" "docker NS" \
  "example.invalid A"; do
  kdig @127.0.0.1 -p "$NA" +time=5 +retry=0 $q >/dev/null 2>&1 || true
  kdig @127.0.0.1 -p "$NA" +tcp +time=5 +retry=0 $q >/dev/null 2>&1 || true
done
kdig @127.0.0.1 -p "$NA" +time=5 +retry=0 +bufsize=4096 +nsid +cookie e5 A >/dev/null 2>&1 || true
printf '[[networks.scale.endpoints]]\nname = "reloaded"\nipv4 = "10.99.0.9"\n' >>"$work/c.toml"
answers "$NA" reloaded
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.5" "$bin" health \
  --http "127.0.0.1:$HTTP" --ready >/dev/null 2>&1 || true
stop "$tpid"

# 2. Forwarding to a local upstream.
printf '10.98.0.1 up.example.test\n' >"$work/hosts"
dnsmasq --no-daemon --conf-file=/dev/null --pid-file= --port="$UP" --listen-address=127.0.0.1 \
  --bind-interfaces --no-resolv --no-hosts --addn-hosts="$work/hosts" >"$work/dnsmasq.log" 2>&1 &
pids+=($!)
traced 2 serve --listen "127.0.0.1:$NA" --upstream "127.0.0.1:$UP"
answers "$NA" up.example.test
kdig @127.0.0.1 -p "$NA" +tcp +time=5 +retry=0 up.example.test A >/dev/null 2>&1 || true
kdig @127.0.0.1 -p "$NA" +time=5 +retry=0 nothing.example.test A >/dev/null 2>&1 || true
stop "$tpid"

# 3. The Docker source, when there is an engine.
if docker -H unix:///var/run/docker.sock info >/dev/null 2>&1; then
  traced 3 serve --listen "127.0.0.1:$NA" --docker --http-listen "127.0.0.1:$HTTP"
  deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    "$bin" health --http "127.0.0.1:$HTTP" --ready >/dev/null 2>&1 && break
    sleep 0.2
  done
  kdig @127.0.0.1 -p "$NA" +time=5 +retry=0 nothing.docker A >/dev/null 2>&1 || true
  stop "$tpid"
else
  echo "text-order: no Docker engine; the Docker source's functions are left out" >&2
fi

# 4. The other commands a container runs.
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.4" "$bin" check-config "$work/c.toml" \
  >/dev/null 2>&1 || true

out=src/text-order.txt
{
  echo "# Made by benches/text-order.sh from $(git rev-parse --short HEAD 2>/dev/null || echo '?'); read by src/build.rs."
  echo "# Names change with the toolchain and the dependencies: regenerate after updating either."
  echo "# rustc $(rustc -vV | sed -n 's/^release: //p')"
  # Every function run (callgrind's `fn=` and `cfn=` lines name each once with its id) that
  # the binary has (callgrind names a few by address, or with a `'N` suffix for a copy): the
  # static run's first, then what each later run adds, so that a server with static records
  # only touches the front of the block.
  for n in 1 5 2 3 4; do
    [ -f "$work/cg.$n" ] || continue
    sed -nE "s/^c?fn=\([0-9]+\) (.+)$/\1/p" "$work/cg.$n" | sed -E "s/'[0-9]+$//" | sort -u
  done | awk '!seen[$0]++' | grep -Fxf <(nm "$bin" | awk '{print $NF}' | sort -u)
} >"$out.new"
mv "$out.new" "$out"
echo "text-order: $(grep -vc '^#' "$out") functions in $out"
