#!/usr/bin/env bash
# Event storm: COUNT containers started and then stopped concurrently (PARALLEL docker
# commands at a time) on one network, all behind one alias, while dnsperf queries netalias at
# a fixed rate. The same dnsperf run against dnsmasq (static records), side by side during the
# same storm, is the loss baseline: both see the same machine load. Afterwards it times how
# long netalias takes to settle to what `docker inspect` says, name by name, and reports stale
# and missing entries.
#
# Usage: bash benches/storm.sh [COUNT] [RATE_QPS]
# Needs: a Docker engine, dnsperf, dnsmasq, kdig (installed here if missing, as root).
# Traffic goes only to loopback. Every container and the network carry netalias.test=1.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-200}"
RATE="${2:-20000}"
PARALLEL="${PARALLEL:-16}"
PERF_SECONDS="${PERF_SECONDS:-40}"
NA_PORT="${NA_PORT:-15391}"
DM_PORT="${DM_PORT:-15392}"
HTTP_PORT="${HTTP_PORT:-19391}"
NET=natest-storm
IMAGE=netalias-test/busybox:1

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v kdig >/dev/null || need+=(knot-dnsutils)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet
# The binary just built, wherever CARGO_TARGET_DIR puts it.
NETALIAS="${CARGO_TARGET_DIR:-target}/release/netalias"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  docker ps -aq --filter label=netalias.test=1 --filter "network=$NET" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker network rm "$NET" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bash tests/build-test-image.sh
docker network create --label netalias.test=1 --subnet 10.241.0.0/16 "$NET" >/dev/null

printf 'storm A\napp A\nweb1 A\n' >"$work/queries"
printf '172.72.0.2 app web1\n172.72.0.3 app\n172.72.0.4 app\n10.241.0.9 storm\n' >"$work/hosts"

NETALIAS_LOG=warn "$NETALIAS" serve --docker --listen "127.0.0.1:$NA_PORT" \
  --http-listen "127.0.0.1:$HTTP_PORT" &
pids+=($!); na_pid=$!
dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --bind-interfaces \
  --listen-address=127.0.0.1 --port="$DM_PORT" --addn-hosts="$work/hosts" --user=root \
  --pid-file="$work/dnsmasq.pid" 2>"$work/dnsmasq.log" &
pids+=($!)
for _ in $(seq 1 50); do
  kdig @127.0.0.1 -p "$NA_PORT" +short +timeout=1 web1 | grep -q . && break
  sleep 0.1
done

dnsperf_run() { # PORT SECONDS → "completed lost"
  dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -l "$2" -Q "$RATE" -c 4 -q 500 2>&1 |
    awk '/Queries completed/ {c=$3} /Queries lost/ {l=$3} END {print c, l}'
}

names=()
for i in $(seq 1 "$COUNT"); do names+=("natest-storm-$i"); done
IDLE="trap 'exit 0' TERM; while true; do sleep 1; done"
start_all() {
  printf '%s\n' "${names[@]}" | xargs -P "$PARALLEL" -I{} docker run -d --label netalias.test=1 \
    --name {} --network "$NET" --network-alias storm "$IMAGE" sh -c "$IDLE" >/dev/null
}
stop_half() { # the even-numbered ones stop; the odd ones stay
  printf '%s\n' "${names[@]}" | awk -F- '$3 % 2 == 0' |
    xargs -P "$PARALLEL" -I{} docker stop -t 1 {} >/dev/null
}

echo "storm: $COUNT containers started, then half stopped, ${PARALLEL} at a time, under dnsperf"
echo "(dnsperf at ${RATE} q/s for ${PERF_SECONDS}s against netalias and, side by side, dnsmasq)"
dnsperf_run "$NA_PORT" "$PERF_SECONDS" >"$work/na.out" &
perf_pid=$!
dnsperf_run "$DM_PORT" "$PERF_SECONDS" >"$work/dm.out" &
dm_perf_pid=$!
storm_start=$(date +%s.%N)
start_all
stop_half
storm_end=$(date +%s.%N)
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$na_pid/status")

# Settle: every container's name answers its IP if running and nothing if stopped, and the
# alias answers exactly the running ones.
want_alias=$(docker ps -q --filter label=netalias.test=1 --filter "network=$NET" |
  xargs docker inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" | sort)
check() {
  local got
  got=$(kdig @127.0.0.1 -p "$NA_PORT" +tcp +short +timeout=2 storm | sort)
  [ "$got" = "$want_alias" ] || return 1
  return 0
}
until check; do sleep 0.05; done
settled=$(date +%s.%N)
stale=0; missing=0
for n in "${names[@]}"; do
  running=$(docker inspect -f '{{.State.Running}}' "$n")
  got=$(kdig @127.0.0.1 -p "$NA_PORT" +short +timeout=2 "$n")
  if [ "$running" = true ]; then
    want=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" "$n")
    [ "$got" = "$want" ] || missing=$((missing + 1))
  else
    [ -z "$got" ] || stale=$((stale + 1))
  fi
done
wait "$perf_pid" "$dm_perf_pid"
read -r na_done na_lost <"$work/na.out"
read -r dm_done dm_lost <"$work/dm.out"
alive=yes; kill -0 "$na_pid" 2>/dev/null || alive=no

awk -v s="$storm_start" -v e="$storm_end" -v t="$settled" -v c="$COUNT" \
  'BEGIN { printf "storm: %d starts + %d stops in %.1f s; settled %.0f ms after the last docker command\n", c, c/2, e-s, (t-e)*1000 }'
echo "running after the storm: $(echo "$want_alias" | grep -c .) (alias members answered: all)"
echo "names checked: ${#names[@]}; stale: $stale; missing: $missing; netalias alive: $alive; RSS ${rss_kib} KiB"
echo "dnsperf at ${RATE} q/s, ${PERF_SECONDS} s, during the storm: netalias completed $na_done lost $na_lost; dnsmasq completed $dm_done lost $dm_lost"
[ "$alive" = yes ] && [ "$stale" -eq 0 ] && [ "$missing" -eq 0 ]
