#!/usr/bin/env bash
# User-space instructions per query, counted by callgrind. For the same binary and queries the
# count repeats within about 1% (the idle receive loop's timeouts vary with wall time), whatever
# else the machine does, so it shows changes far smaller than the ±10% noise of the load benches
# (load.sh, scale.sh).
#
# Also: names held only by a wildcard alias (`*.shop.test`), through the fast path.
# Counted: the UDP receive loop and the full handler's task (callgrind --toggle-collect; not
# start-up, shutdown or the other threads), for dnsperf sending ROUNDS rounds of the three-name
# file with one query in flight, so every receive takes one packet; divided by every query
# answered, the readiness probes' included. (callgrind_control --zero would drop the probes,
# but through vgdb it stalls the blocked receive loop for seconds.) Twice: fast path on, and
# off (every packet through the full path); and a third time for three forwarded names served
# from the forwarding cache (an upstream dnsmasq on loopback; the cache warmed by the probes),
# through the fast path and through the full path.
# The kernel's share, most of the CPU per query, is not counted: load.sh measures it.
#
# Usage: [KEEP=DIR] [NETALIAS=path] bash benches/instructions.sh [ROUNDS]   (default 1000 rounds of 3 names = 3000 queries;
# the full path is slow under valgrind: its task wake-ups take milliseconds there)
# Needs: valgrind, dnsperf, dnsmasq. Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-1000}"
PORT="${PORT:-15358}"
need=()
command -v valgrind >/dev/null || need+=(valgrind)
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# NETALIAS=path counts that binary (another commit's, or the shipped `dist` build); otherwise
# the release build of this checkout, built first, wherever CARGO_TARGET_DIR puts it.
if [ -n "${NETALIAS:-}" ]; then
  [ -x "$NETALIAS" ] || { echo "instructions: no netalias binary at $NETALIAS" >&2; exit 1; }
else
  cargo build --release --quiet
  NETALIAS="${CARGO_TARGET_DIR:-target}/release/netalias"
fi
work=$(mktemp -d)
server=""
# KEEP=DIR keeps callgrind's outputs there, for callgrind_annotate.
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$work"/*.out "$KEEP"/ 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
printf 'app A\nweb1 A\nweb2 A\n' >"$work/queries"

# count LABEL FAST_PATH [QUERIES] [SERVE ARGS...] -> prints "LABEL: N instructions per query (Q queries)"
count() {
  local label=$1 fast=$2 queries=${3:-$work/queries}
  shift 2; [ $# -gt 0 ] && shift
  sed -e "s/127.0.0.1:1053/127.0.0.1:$PORT/" -e "s/^udp_fast_path = .*/udp_fast_path = $fast/" \
    -e "${EXTRA_SED:-}" config/netalias.toml >"$work/$label.toml"
  NETALIAS_LOG=warn valgrind --tool=callgrind --fair-sched=yes --collect-atstart=no \
    --toggle-collect='*udp::receive_loop*' --toggle-collect='*udp::full_path*' \
    --callgrind-out-file="$work/$label.out" \
    "$NETALIAS" serve --config "$work/$label.toml" "$@" 2>"$work/$label.log" &
  server=$!
  local probed=0 answered
  for _ in $(seq 1 300); do
    answered=$(dnsperf -s 127.0.0.1 -p "$PORT" -d "$queries" -n 1 -t 1 2>/dev/null \
      | awk '/Queries completed:/ {print $3}')
    probed=$((probed + ${answered:-0}))
    [ "${answered:-0}" = 3 ] && break
    sleep 0.2
  done
  local out completed
  out=$(dnsperf -s 127.0.0.1 -p "$PORT" -d "$queries" -n "$ROUNDS" -q 1 -t 5 2>&1)
  completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
  # SIGTERM: netalias shuts down cleanly and callgrind writes its counts as it exits.
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  completed=$((completed + probed))
  local total
  total=$(awk '/^(totals|summary):/ {print $2; exit}' "$work/$label.out" 2>/dev/null || true)
  if [ -z "$total" ] || [ -z "$completed" ] || [ "$completed" -eq 0 ]; then
    echo "$label: no count (see valgrind's log below)"; cat "$work/$label.log"; exit 1
  fi
  # A receive takes hundreds of instructions: far fewer means the toggled functions were not
  # there to count (inlined away), not a fast path.
  if [ "$total" -lt $((completed * 200)) ]; then
    echo "$label: $total instructions for $completed queries: udp::receive_loop was not counted (inlined?)"
    exit 1
  fi
  awk -v l="$label" -v t="$total" -v c="$completed" \
    'BEGIN { printf "%-10s %8.0f instructions per query (%d queries, %d in all)\n", l, t / c, c, t }'
}
count fast true
count full false
# Names held only by a wildcard (`*.shop.test` on web1, 2 and 3): the walk up to it, then
# the same rotation as `app`.
printf 'a.shop.test A\nb.shop.test A\nc.shop.test A\n' >"$work/wild"
EXTRA_SED='s/^aliases = \["app"\]/aliases = ["app", "*.shop.test"]/' count wildcard true "$work/wild"
# Forwarded names from the cache: an upstream dnsmasq answers everything under `test.`.
UP_PORT=$((PORT + 1))
dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
  --port="$UP_PORT" --address=/test/192.0.2.9 --local-ttl=300 --user=root \
  --pid-file="$work/up.pid" 2>/dev/null &
upstream=$!
printf 'www.example.test A\napi.example.test A\ndb.example.test A\n' >"$work/forwarded"
count cached true "$work/forwarded" --upstream "127.0.0.1:$UP_PORT"
# The same through the full path (fast path off): what TCP clients, answers too large for
# UDP and `udp_fast_path = false` pay for a cached answer.
count cachedfull false "$work/forwarded" --upstream "127.0.0.1:$UP_PORT"
kill "$upstream" 2>/dev/null || true
