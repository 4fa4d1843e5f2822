#!/usr/bin/env bash
# Load comparison with the same records, the same query file and the same dnsperf settings,
# interleaved: netalias, dnsmasq, aardvark-dns and a responder that only flips the QR bit (the
# harness's ceiling) on 127.0.0.1, and Docker's embedded DNS inside a test container's network
# namespace (when a Docker engine is there; NO_DOCKER=1 skips it). Prints queries/s, lost
# queries, server CPU µs per query, average latency, the ratios, and the harness's ceiling
# for each ratio (the QR-flip responder's own ratio).
#
# Then the same servers at an equal CPU budget: each in turn in a cgroup capped at CAP_CPU of a
# core (default 0.25, at least 0.1; CAP_CPU=0 skips), so the server, not dnsperf, is what limits the rate, and
# the throughput ratios are capacity per core. That needs the cgroup v1 cpu controller at
# /sys/fs/cgroup/cpu and root; dockerd is moved into the cap for its runs and back after.
#
# Usage: bash benches/load.sh [SECONDS_PER_RUN] [ROUNDS]   (LOG_QUERIES=1: both log every query to a file)
# Needs: dnsperf, dnsmasq, aardvark-dns, gcc (installed here if missing, as root).
# Traffic goes only to loopback and to the containers this script creates.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-5}"
ROUNDS="${2:-2}"
CLIENTS="${CLIENTS:-4}"
OUTSTANDING="${OUTSTANDING:-500}"
NA_PORT="${NA_PORT:-15353}"
DM_PORT="${DM_PORT:-15354}"
AA_PORT="${AA_PORT:-15356}"
FLIP_PORT="${FLIP_PORT:-15357}"

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
[ -x /usr/lib/podman/aardvark-dns ] || need+=(aardvark-dns)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet
# The binary just built, wherever CARGO_TARGET_DIR puts it.
NETALIAS="${CARGO_TARGET_DIR:-target}/release/netalias"

work=$(mktemp -d)
pids=()
CAP_CPU="${CAP_CPU:-0.25}"
CAP_ROOT=/sys/fs/cgroup/cpu
# Moves every process of a natest-cap-* cgroup back where it came from (recorded when capped;
# the root of the hierarchy if unrecorded, e.g. after a crashed run) and removes the cgroup.
uncap_all() {
  local dir p origin
  for dir in "$CAP_ROOT"/natest-cap-*; do
    [ -d "$dir" ] || continue
    for p in $(cat "$dir/cgroup.procs" 2>/dev/null); do
      origin=$(cat "$work/cap-origin-$p" 2>/dev/null || echo /)
      echo "$p" >"$CAP_ROOT$origin/cgroup.procs" 2>/dev/null || echo "$p" >"$CAP_ROOT/cgroup.procs" || true
    done
    rmdir "$dir" 2>/dev/null || true
  done
}
cleanup() {
  uncap_all
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f "aardvark-dns -c $work" 2>/dev/null || true
  if [ -n "${use_docker:-}" ]; then
    docker rm -f natest-load-web1 natest-load-web2 natest-load-web3 natest-load-client >/dev/null 2>&1 || true
    docker network rm natest-load >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM

# The same records for both: the seed's three web servers behind `app`.
cat >"$work/hosts" <<'HOSTS'
172.72.0.2 app web1
172.72.0.3 app web2
172.72.0.4 app web3
HOSTS
printf 'app A\nweb1 A\nweb2 A\n' >"$work/queries"

# LOG_QUERIES=1: netalias and dnsmasq each log every query to a file (the query log's cost).
na_log=(); dm_log=(); na_filter=warn
if [ "${LOG_QUERIES:-0}" = 1 ]; then
  na_log=(--log-queries); na_filter=warn,netalias::query=info
  dm_log=(--log-queries "--log-facility=$work/dnsmasq-queries.log")
fi
NETALIAS_LOG=$na_filter "$NETALIAS" serve --config config/netalias.toml \
  --listen "127.0.0.1:$NA_PORT" "${na_log[@]}" 2>"$work/netalias-queries.log" &
pids+=($!); na_pid=$!
dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
  --listen-address=127.0.0.1 --port="$DM_PORT" --addn-hosts="$work/hosts" --user=root \
  --pid-file="$work/dnsmasq.pid" "${dm_log[@]}" 2>"$work/dnsmasq.log" &
pids+=($!); dm_pid=$!
# aardvark-dns 1.4: one file per network, first line the address it listens on.
mkdir -p "$work/aardvark"
printf '127.0.0.1\nc1 172.72.0.2  web1,app\nc2 172.72.0.3  web2,app\nc3 172.72.0.4  web3,app\n' >"$work/aardvark/seed"
/usr/lib/podman/aardvark-dns -c "$work/aardvark" -p "$AA_PORT" run >/dev/null 2>&1 || true
gcc -O2 -o "$work/flip" benches/flip_responder.c
"$work/flip" "$FLIP_PORT" &
pids+=($!); flip_pid=$!
sleep 1
aa_pid=$(pgrep -f "aardvark-dns -c $work" | head -1)
for p in "$na_pid" "$dm_pid" "$aa_pid" "$flip_pid"; do kill -0 "$p" || { echo "a server failed to start"; exit 1; }; done

# Docker's embedded DNS: three containers behind `app` (aliases web1..3 too), queried from a
# fourth container's namespace, where 127.0.0.11 lives. Its CPU is dockerd's.
use_docker=""
if [ -z "${NO_DOCKER:-}" ] && docker info >/dev/null 2>&1; then
  use_docker=1
  bash tests/build-test-image.sh
  docker network create --label netalias.test=1 --subnet 10.240.0.0/24 natest-load >/dev/null
  for i in 1 2 3; do
    docker run -d --label netalias.test=1 --name "natest-load-web$i" --network natest-load \
      --network-alias app --network-alias "web$i" netalias-test/busybox:1 sleep 3600 >/dev/null
  done
  docker run -d --label netalias.test=1 --name natest-load-client --network natest-load \
    netalias-test/busybox:1 sleep 3600 >/dev/null
  client_pid=$(docker inspect -f '{{.State.Pid}}' natest-load-client)
  dockerd_pid=$(pgrep -x dockerd | head -1)
fi

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME PID PORT [OUTSTANDING] [RESULTS] -> appends "name qps lost completed cpu_us_per_q latency_ms"
run() {
  local name=$1 pid=$2 port=$3 outstanding=${4:-$OUTSTANDING} results=${5:-$work/results}
  local before after out
  before=$(cpu_ticks "$pid")
  local server=127.0.0.1 prefix=()
  if [ "$name" = docker ]; then server=127.0.0.11; prefix=(nsenter -t "$client_pid" -n); fi
  out=$("${prefix[@]}" dnsperf -s "$server" -p "$port" -d "$work/queries" -c "$CLIENTS" -q "$outstanding" \
        -l "$DURATION" 2>&1)
  after=$(cpu_ticks "$pid")
  local completed lost qps lat
  completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
  lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
  qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
  lat=$(awk '/Average Latency/ {print $4}' <<<"$out")
  local cpu_us
  cpu_us=$(awk -v d=$((after - before)) -v t="$ticks" -v c="$completed" \
    'BEGIN { if (c > 0) printf "%.2f", d / t * 1e6 / c; else print "nan" }')
  echo "$name $qps $lost $completed $cpu_us $(awk -v l="$lat" 'BEGIN{printf "%.3f", l*1000}')" >>"$results"
}

# capped_run NAME PID PORT: `run` with the server's process in a cgroup of CAP_CPU of a core.
# Fewer queries in flight (100) than the socket buffers hold, so that a server waiting for its
# next slice of CPU loses none and dnsperf's window never fills with timed-out queries.
capped_run() {
  local name=$1 pid=$2 port=$3 dir="$CAP_ROOT/natest-cap-$1"
  mkdir -p "$dir"
  echo 10000 >"$dir/cpu.cfs_period_us"
  awk -v c="$CAP_CPU" 'BEGIN { printf "%d\n", c * 10000 }' >"$dir/cpu.cfs_quota_us"
  awk -F: '$2 == "cpu" || $2 ~ /(^|,)cpu(,|$)/ { print $3; exit }' "/proc/$pid/cgroup" >"$work/cap-origin-$pid"
  echo "$pid" >"$dir/cgroup.procs"
  run "$name" "$pid" "$port" 100 "$work/capped"
  uncap_all
}

# rounds RUNNER: ROUNDS interleaved rounds of every server, each measured by RUNNER.
rounds() {
  local runner=$1 round
  for round in $(seq 1 "$ROUNDS"); do
    "$runner" netalias "$na_pid" "$NA_PORT"
    "$runner" dnsmasq "$dm_pid" "$DM_PORT"
    "$runner" aardvark "$aa_pid" "$AA_PORT"
    "$runner" flip "$flip_pid" "$FLIP_PORT"
    if [ -n "$use_docker" ]; then "$runner" docker "$dockerd_pid" 53; fi
  done
}

# table RESULTS: each server's mean over its runs.
table() {
  printf '%-10s %12s %8s %12s %10s %12s\n' server "queries/s" lost completed "cpu µs/q" "latency ms"
  awk '{ n[$1]++; q[$1]+=$2; l[$1]+=$3; c[$1]+=$4; u[$1]+=$5; t[$1]+=$6 }
       END { for (s in n) printf "%-10s %12.0f %8.0f %12.0f %10.2f %12.3f\n", s, q[s]/n[s], l[s]/n[s], c[s]/n[s], u[s]/n[s], t[s]/n[s] }' \
    "$1" | sort
}

rounds run

can_cap=""
if awk -v c="$CAP_CPU" 'BEGIN { exit !(c > 0) }' && [ -w "$CAP_ROOT/cgroup.procs" ] && [ -f "$CAP_ROOT/cpu.cfs_quota_us" ]; then
  can_cap=1
  uncap_all
  rounds capped_run
fi

# Rotation under load: dnsperf keeps netalias at full rate on web1/web2 while four concurrent
# clients ask `app` 30,000 times and count every answer's first member (spread must be <= 1).
printf 'web1 A\nweb2 A\n' >"$work/busy"
dnsperf -s 127.0.0.1 -p "$NA_PORT" -d "$work/busy" -c "$CLIENTS" -q "$OUTSTANDING" -l 15 >/dev/null 2>&1 &
busy=$!
sleep 0.5
python3 benches/rotation_check.py "$NA_PORT" app "${ROTATION_QUERIES:-30000}" | tee "$work/rotation"
kill "$busy" 2>/dev/null || true
wait "$busy" 2>/dev/null || true

echo
table "$work/results"
echo
awk '{ n[$1]++; q[$1]+=$2; u[$1]+=$5 }
     END {
       na = q["netalias"]/n["netalias"]; nu = u["netalias"]/n["netalias"]
       for (s in n) if (s != "netalias")
         printf "netalias / %-8s throughput %.2fx   cpu per query %.2fx\n", s, na/(q[s]/n[s]), nu/(u[s]/n[s])
     }' "$work/results" | sort
# No server answers faster than the responder that only flips the QR bit, so in this harness
# no throughput ratio over another server can exceed flip's own ratio over it.
awk '{ n[$1]++; q[$1]+=$2 }
     END {
       if (!("flip" in n)) exit
       f = q["flip"]/n["flip"]
       for (s in n) if (s != "netalias" && s != "flip")
         printf "harness ceiling over %-8s flip / %s throughput %.2fx\n", s, s, f/(q[s]/n[s])
     }' "$work/results" | sort
echo "(dnsperf -c $CLIENTS -q $OUTSTANDING -l $DURATION, $ROUNDS interleaved rounds, per-run figures:)"
cat "$work/results"

echo
if [ -z "$can_cap" ]; then
  echo "equal-CPU capacity: skipped (CAP_CPU=0, or no writable cgroup v1 cpu controller at $CAP_ROOT)"
  exit 0
fi
echo "equal CPU: each server capped at $CAP_CPU of a core (cgroup cpu quota), dnsperf -c $CLIENTS -q 100:"
table "$work/capped"
awk '{ n[$1]++; q[$1]+=$2 }
     END { na = q["netalias"]/n["netalias"]
       for (s in n) if (s != "netalias") printf "capacity per core: netalias / %-8s %.2fx\n", s, na/(q[s]/n[s]) }' \
  "$work/capped" | sort
echo "(per-run figures at equal CPU:)"
cat "$work/capped"
