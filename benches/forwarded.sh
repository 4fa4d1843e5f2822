#!/usr/bin/env bash
# Forwarded names, side by side with dnsmasq (issue: speed for the names containers ask most).
#
# An upstream dnsmasq on loopback answers every name under `test.` (TTL 300). In front of it:
# netalias (`--upstream`, its cache and fast path) and a forwarding, caching dnsmasq. Then:
#  1. cache hits: the same three forwarded names asked of both, after a warm-up, so every
#     answer is from the cache; netalias's own names (`app`, `web1`, `web2`) beside them as its
#     ceiling. dnsperf -c CLIENTS -q OUTSTANDING, DURATION s, ROUNDS interleaved rounds;
#     queries/s, server CPU µs per query, each round's ratios and the median round's;
#  2. cold path: COLD distinct names (all misses), each asked once, at -q 100: queries/s, lost
#     and p99 latency (from dnsperf -v) for both, and for Docker's embedded DNS (it has no
#     cache) when an engine is here (NO_DOCKER=1 skips it): a test network whose gateway runs
#     the same upstream on port 53, a container with `--dns` at it, dnsperf in its namespace.
# Usage: bash benches/forwarded.sh [SECONDS_PER_RUN] [ROUNDS]   (COLD=20000)
# Needs: dnsperf, dnsmasq (installed here if missing, as root). Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-5}"
ROUNDS="${2:-2}"
COLD="${COLD:-20000}"
CLIENTS="${CLIENTS:-4}"
OUTSTANDING="${OUTSTANDING:-500}"
UP_PORT=15381 NA_PORT=15382 DM_PORT=15383

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet
# The binary just built, wherever CARGO_TARGET_DIR puts it.
NETALIAS="${CARGO_TARGET_DIR:-target}/release/netalias"

work=$(mktemp -d)
pids=()
use_docker=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$use_docker" ]; then
    docker rm -f natest-fwd-client >/dev/null 2>&1 || true
    docker network rm natest-fwd >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM

dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
  --listen-address=127.0.0.1 --port="$UP_PORT" --address=/test/192.0.2.9 --local-ttl=300 \
  --cache-size=0 --user=root --pid-file="$work/up.pid" 2>"$work/up.log" &
pids+=($!)
NETALIAS_LOG=warn "$NETALIAS" serve --config config/netalias.toml \
  --listen "127.0.0.1:$NA_PORT" --upstream "127.0.0.1:$UP_PORT" &
pids+=($!); na_pid=$!
dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
  --listen-address=127.0.0.1 --port="$DM_PORT" --server="127.0.0.1#$UP_PORT" \
  --cache-size=10000 --user=root --pid-file="$work/dm.pid" 2>"$work/dm.log" &
pids+=($!); dm_pid=$!
sleep 1
for p in "$na_pid" "$dm_pid"; do kill -0 "$p" || { echo "a server failed to start"; exit 1; }; done

printf 'www.example.test A\napi.example.test A\ndb.example.test A\n' >"$work/forwarded"
printf 'app A\nweb1 A\nweb2 A\n' >"$work/local"
for port in "$NA_PORT" "$DM_PORT"; do # warm the caches
  dnsperf -s 127.0.0.1 -p "$port" -d "$work/forwarded" -n 2 >/dev/null 2>&1
done

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run ROUND LABEL PID PORT FILE -> appends "round label qps cpu_us_per_query"
run() {
  local round=$1 label=$2 pid=$3 port=$4 file=$5 before after out completed qps
  before=$(cpu_ticks "$pid")
  out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$file" -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION" 2>&1)
  after=$(cpu_ticks "$pid")
  completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
  qps=$(awk '/Queries per second:/ {printf "%.0f", $4}' <<<"$out")
  awk -v r="$round" -v l="$label" -v q="$qps" -v d=$((after - before)) -v t="$ticks" -v c="$completed" \
    'BEGIN { printf "%s %s %s %.2f\n", r, l, q, (c > 0 ? d / t * 1e6 / c : 0) }' >>"$work/hits"
}
# The three runs of a round are next to each other in time, so a round's ratios are less
# disturbed by the machine's other load than the means are; the median round is the figure.
for round in $(seq 1 "$ROUNDS"); do
  run "$round" dnsmasq-cache-hits "$dm_pid" "$DM_PORT" "$work/forwarded"
  run "$round" netalias-cache-hits "$na_pid" "$NA_PORT" "$work/forwarded"
  run "$round" netalias-own-names "$na_pid" "$NA_PORT" "$work/local"
done
echo "cache hits (dnsperf -c $CLIENTS -q $OUTSTANDING, ${DURATION}s, $ROUNDS rounds; mean of rounds):"
printf '  %-22s %10s %14s\n' server queries/s "CPU us/query"
awk '{ q[$2] += $3; c[$2] += $4; n[$2]++ } END {
  for (s in q) printf "  %-22s %10.0f %14.2f\n", s, q[s] / n[s], c[s] / n[s]
}' "$work/hits" | sort
echo "  per round: netalias/dnsmasq queries/s, CPU per query; cache hits / own names queries/s"
awk '{ q[$1, $2] = $3; c[$1, $2] = $4; if ($1 > last) last = $1 } END {
  for (r = 1; r <= last; r++) {
    a[r] = q[r, "netalias-cache-hits"] / q[r, "dnsmasq-cache-hits"]
    b[r] = c[r, "netalias-cache-hits"] / c[r, "dnsmasq-cache-hits"]
    o[r] = q[r, "netalias-cache-hits"] / q[r, "netalias-own-names"]
    printf "    round %d: %.2fx  %.2fx  %.2fx\n", r, a[r], b[r], o[r]
  }
  printf "  median round: %.2fx queries/s (target >= 1.10), %.2fx CPU per query (<= 0.80), %.2fx own names (>= 0.90)\n", median(a, last), median(b, last), median(o, last)
}
function median(v, n,   i, j, t, s) {
  for (i = 1; i <= n; i++) s[i] = v[i]
  for (i = 2; i <= n; i++) for (j = i; j > 1 && s[j - 1] > s[j]; j--) { t = s[j]; s[j] = s[j - 1]; s[j - 1] = t }
  return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}' "$work/hits"

# Cold: every name once, all misses (distinct per server, so neither sees the other's).
cold() {
  local label=$1 port=$2 file="$work/cold-$1" out
  awk -v n="$COLD" -v l="$label" 'BEGIN { for (i = 0; i < n; i++) printf "n%d.%s.cold.test A\n", i, l }' >"$file"
  out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$file" -n 1 -c "$CLIENTS" -q 100 -t 2 -v 2>&1)
  local p99
  p99=$(awk '/^> / {print $NF}' <<<"$out" | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", v[int(NR * 0.99)] * 1000; else print "nan" }')
  awk -v l="$label" -v p="$p99" '
    /Queries completed:/ { c = $3 } /Queries lost:/ { lost = $3 } /Queries per second:/ { q = $4 }
    END { printf "  %-10s %10.0f q/s  completed %s  lost %s  p99 %s ms\n", l, q, c, lost, p }' <<<"$out"
}
echo "cold path ($COLD distinct names, each once, -q 100):"
cold dnsmasq "$DM_PORT"
cold netalias "$NA_PORT"

# Docker's embedded DNS forwards from the container's namespace to its `--dns` servers, on
# port 53: the upstream is started again on the test network's gateway.
if [ -z "${NO_DOCKER:-}" ] && docker info >/dev/null 2>&1; then
  use_docker=1
  bash tests/build-test-image.sh
  docker network create --label netalias.test=1 --subnet 10.242.0.0/24 --gateway 10.242.0.1 natest-fwd >/dev/null
  dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
    --listen-address=10.242.0.1 --port=53 --address=/test/192.0.2.9 --local-ttl=300 \
    --cache-size=0 --user=root --pid-file="$work/up53.pid" 2>"$work/up53.log" &
  pids+=($!)
  docker run -d --label netalias.test=1 --name natest-fwd-client --network natest-fwd \
    --dns 10.242.0.1 netalias-test/busybox:1 sleep 3600 >/dev/null
  client_pid=$(docker inspect -f '{{.State.Pid}}' natest-fwd-client)
  sleep 1
  file="$work/cold-docker"
  awk -v n="$COLD" 'BEGIN { for (i = 0; i < n; i++) printf "n%d.docker.cold.test A\n", i }' >"$file"
  out=$(nsenter -t "$client_pid" -n dnsperf -s 127.0.0.11 -p 53 -d "$file" -n 1 -c "$CLIENTS" -q 100 -t 2 -v 2>&1)
  p99=$(awk '/^> / {print $NF}' <<<"$out" | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", v[int(NR * 0.99)] * 1000; else print "nan" }')
  awk -v p="$p99" '
    /Queries completed:/ { c = $3 } /Queries lost:/ { lost = $3 } /Queries per second:/ { q = $4 }
    END { printf "  %-10s %10.0f q/s  completed %s  lost %s  p99 %s ms\n", "docker", q, c, lost, p }' <<<"$out"
fi
