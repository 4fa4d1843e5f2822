#!/usr/bin/env bash
# Scale and latency figures for netalias on loopback (issue: speed):
#  1. three-name throughput with the seed's records vs with 10,000 more names and one alias of
#     500 members (the same 3-name query file);
#  2. p99 latency at half the measured maximum load (dnsperf -Q beside a one-at-a-time probe);
#  3. resident memory with 100,000 endpoints.
# Usage: bash benches/scale.sh [SECONDS_PER_RUN]. Needs dnsperf. Traffic stays on 127.0.0.1.
# ONLY_RSS=1 measures only 3 (under a minute, and not disturbed by other load on the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-5}"
command -v dnsperf >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf >/dev/null; }
cargo build --release --quiet
# The binary just built, wherever CARGO_TARGET_DIR puts it.
NETALIAS="${CARGO_TARGET_DIR:-target}/release/netalias"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
printf 'app A\nweb1 A\nweb2 A\n' >"$work/queries"

# config with the seed's network plus N endpoints, the first M of them behind alias `big`.
make_config() {
  local port=$1 n=$2 m=$3 out=$4
  sed "s/127.0.0.1:1053/127.0.0.1:$port/" config/netalias.toml >"$out"
  awk -v n="$n" -v m="$m" 'BEGIN {
    print "\n[networks.scale]"
    for (i = 0; i < n; i++) {
      printf "[[networks.scale.endpoints]]\nname = \"e%d\"\nipv4 = \"10.%d.%d.%d\"\n", i, 100 + int(i / 65536), int(i / 256) % 256, i % 256
      if (i < m) print "aliases = [\"big\"]"
    }
  }' >>"$out"
}

start() { # start PORT CONFIG -> pid
  NETALIAS_LOG=warn "$NETALIAS" serve --config "$2" >/dev/null 2>&1 &
  local pid=$!
  # Up within 120 s (100,000 endpoints load in a few), or a clear failure: not a wait of
  # 600 dnsperf timeouts for a server that never started.
  for _ in $(seq 1 240); do
    if ! kill -0 "$pid" 2>/dev/null; then echo "scale: netalias ($NETALIAS) exited at start" >&2; exit 1; fi
    if dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -n 1 -t 1 2>/dev/null | grep -q "Queries completed: *3 "; then echo "$pid"; return; fi
    sleep 0.5
  done
  echo "scale: netalias did not answer on port $1 within 120 s" >&2
  kill "$pid" 2>/dev/null || true
  exit 1
}

qps() { dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -c 4 -q 500 -l "$DURATION" 2>&1 | awk '/Queries per second/ {printf "%.0f", $4}'; }

if [ "${ONLY_RSS:-0}" != 1 ]; then
make_config 15371 0 0 "$work/seed.toml"
make_config 15372 10000 500 "$work/scale.toml"
seed_pid=$(start 15371 "$work/seed.toml"); pids+=("$seed_pid")
scale_pid=$(start 15372 "$work/scale.toml"); pids+=("$scale_pid")
# Three interleaved rounds, medians: one 5 s run on this VM drifts by 10%.
seed_runs=(); scale_runs=()
for _ in 1 2 3; do seed_runs+=("$(qps 15371)"); scale_runs+=("$(qps 15372)"); done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
seed_qps=$(median "${seed_runs[@]}"); scale_qps=$(median "${scale_runs[@]}")
echo "three-name throughput (median of 3): seed records $seed_qps q/s, with 10,000 names + a 500-member alias $scale_qps q/s"
echo "  runs: seed ${seed_runs[*]}; 10k names ${scale_runs[*]}"
awk -v a="$seed_qps" -v b="$scale_qps" 'BEGIN { printf "scale ratio: %.2fx\n", b / a }'
echo "500-member alias over TCP: $(kdig @127.0.0.1 -p 15372 +tcp +short big | wc -l) addresses"

half=$(( seed_qps / 2 ))
# Latency at half the maximum load: dnsperf holds $half q/s while a probe asks one question at
# a time (every 0.5 ms) and times each answer. (dnsperf -v's per-query log cost more CPU than the
# server under test and put even the QR-flip responder's p99 above 2.5 ms.) Servers run on CPU 0,
# dnsperf and the probe on CPU 1, as if the load came from another host. The QR-flip responder
# under the same load is the floor of this machine; rounds are interleaved.
gcc -O2 -o "$work/flip" benches/flip_responder.c
"$work/flip" 15374 &
pids+=($!); flip_pid=$!
sleep 0.2
for p in "$seed_pid" "$flip_pid"; do taskset -a -p -c 0 "$p" >/dev/null; done
latency() { # PORT LABEL
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -c 4 -q 500 -l $((PROBES / 2000 + 2)) \
    -Q "$half" >"$work/bg" 2>&1 &
  local bg=$!
  sleep 0.5
  taskset -c 1 python3 benches/latency_probe.py "$1" "$PROBES" 0.0005 "$2" | tee -a "$work/latencies"
  wait "$bg"
}
PROBES="${PROBES:-4000}"
echo "latency at $half q/s (half the maximum), $PROBES probes per run:"
for _ in 1 2 3; do latency 15371 netalias; latency 15374 flip; done
for s in netalias flip; do
  awk -v s="$s" '$1 == s { print $5 }' "$work/latencies" | sort -g \
    | awk -v s="$s" '{ v[NR] = $1 } END { printf "median p99 over %d runs: %-8s %.3f ms\n", NR, s, v[int((NR + 1) / 2)] }'
done
kill "$flip_pid" 2>/dev/null || true
kill "$seed_pid" "$scale_pid" 2>/dev/null || true
fi

make_config 15373 100000 0 "$work/big.toml"
started=$(date +%s.%N)
big_pid=$(start 15373 "$work/big.toml"); pids+=("$big_pid")
loaded=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$big_pid/status")
awk -v r="$rss" -v s="$started" -v l="$loaded" 'BEGIN { printf "100,000 endpoints: RSS %.1f MB, loaded and answering in %.1f s\n", r / 1024, l - s }'
