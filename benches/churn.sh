#!/usr/bin/env bash
# Time to answer under churn (issue 31 item 2), for the netalias binary just built (or
# NETALIAS=path): 200 containers started 16 at a time, then 100 removed while 50 more start,
# then the other 100 removed while RESTART_STARTS (50; 0 skips it) more start, with netalias
# killed (SIGKILL) and restarted once a quarter of those have started. Per start, the ms from
# `docker run -d` returning to netalias answering its name; after each phase, whether
# netalias's /records for the network matches `docker inspect` of its containers (exit 1 if not).
# In the removal phase, each removed container is also timed leaving, netalias beside Docker's
# embedded DNS (asked at 127.0.0.11 from inside a prober container on the network, via setns):
# ms from just before its `docker rm -f` is issued to the first answer without its address, each
# server asked every POLL_MS (5) ms, LEAVE_TIMEOUT (5) s at most; p50/p99/max per server and the
# median per-container difference (LEAVING=0 skips it; it needs root).
# Usage: [NETALIAS=BIN] [NET=NAME SUBNET=CIDR] [RESTART_STARTS=N] [NETALIAS_LOG=FILTER]
#        [LEAVING=0|1] [POLL_MS=5] [LEAVE_TIMEOUT=5] [CHURN_TRACE=FILE]
#        bash benches/churn.sh [COUNT REMOVE MORE PARALLEL]
# Needs a Docker engine. Traffic: loopback, and the network and containers made here (Docker's
# DNS inside the prober's namespace). Everything carries netalias.test=1.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-15395}"
HTTP_PORT="${HTTP_PORT:-19395}"
NET="${NET:-natest-churn}"
IMAGE=netalias-test/busybox:1
if [ -z "${NETALIAS:-}" ]; then
  cargo build --release --quiet
  NETALIAS="${CARGO_TARGET_DIR:-target}/release/netalias"
fi
pidfile=$(mktemp)
cleanup() {
  # netalias is churn.py's; its PID is in $pidfile in case churn.py itself was stopped.
  if [ -s "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  rm -f "$pidfile"
  docker ps -aq --filter label=netalias.test=1 --filter name=natest-churn- | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker network rm "$NET" >/dev/null 2>&1 || true
}
trap cleanup EXIT
docker ps -aq --filter label=netalias.test=1 --filter name=natest-churn- | xargs -r docker rm -f >/dev/null 2>&1 || true
docker network rm "$NET" >/dev/null 2>&1 || true
bash tests/build-test-image.sh >/dev/null
docker network create --label netalias.test=1 --subnet "${SUBNET:-10.247.0.0/16}" "$NET" >/dev/null
[ -x "$NETALIAS" ] || { echo "churn: $NETALIAS is not an executable" >&2; exit 2; }
# The harness at nice -10 (root only), what it starts at this shell's nice: churn.py says why.
harness=()
if [ "$(id -u)" = 0 ]; then harness=(nice -n -10); fi
# With CHURN_TRACE, netalias's log (FILE.netalias.log) must say when it publishes each container.
log_filter="${NETALIAS_LOG:-warn}"
if [ -n "${CHURN_TRACE:-}" ]; then log_filter="$log_filter,netalias::source::docker=debug"; : > "$CHURN_TRACE.netalias.log"; fi
CHURN_NICE="$(nice)" NETALIAS_BIN="$NETALIAS" NETALIAS_PIDFILE="$pidfile" HTTP_PORT="$HTTP_PORT" \
  NETALIAS_LOG="$log_filter" "${harness[@]}" python3 benches/churn.py "$PORT" "$NET" "$IMAGE" "$@"
