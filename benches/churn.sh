#!/usr/bin/env bash
# Time to answer under churn (issue 31 item 2), for the netalias binary just built (or
# NETALIAS=path): 200 containers started 16 at a time, then 100 removed while 50 more start,
# then the other 100 removed while RESTART_STARTS (50; 0 skips it) more start, with netalias
# killed (SIGKILL) and restarted once a quarter of those have started. Per start, the ms from
# `docker run -d` returning to netalias answering its name; after each phase, whether
# netalias's /records for the network matches `docker inspect` of its containers (exit 1 if not).
# Usage: [NETALIAS=BIN] [NET=NAME SUBNET=CIDR] [RESTART_STARTS=N] [NETALIAS_LOG=FILTER] bash benches/churn.sh [COUNT REMOVE MORE PARALLEL]
# Needs a Docker engine. Traffic: loopback only. Everything carries netalias.test=1.
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
NETALIAS_BIN="$NETALIAS" NETALIAS_PIDFILE="$pidfile" HTTP_PORT="$HTTP_PORT" \
  NETALIAS_LOG="${NETALIAS_LOG:-warn}" python3 benches/churn.py "$PORT" "$NET" "$IMAGE" "$@"
