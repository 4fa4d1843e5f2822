#!/usr/bin/env bash
# Time to answer under churn (issue 31 item 2), for the netalias binary just built (or
# NETALIAS=path): 200 containers started 16 at a time, then 100 removed while 50 more start;
# per start, the ms from `docker run -d` returning to netalias answering its name.
# Usage: [NETALIAS=BIN] [NET=NAME SUBNET=CIDR] [NETALIAS_LOG=FILTER] bash benches/churn.sh [COUNT REMOVE MORE PARALLEL]
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
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  docker ps -aq --filter label=netalias.test=1 --filter name=natest-churn- | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker network rm "$NET" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
bash tests/build-test-image.sh >/dev/null
docker network create --label netalias.test=1 --subnet "${SUBNET:-10.247.0.0/16}" "$NET" >/dev/null
NETALIAS_LOG="${NETALIAS_LOG:-warn}" "$NETALIAS" serve --docker --listen "127.0.0.1:$PORT" --http-listen "127.0.0.1:$HTTP_PORT" &
server=$!
for _ in $(seq 1 50); do
  "$NETALIAS" health --http "127.0.0.1:$HTTP_PORT" --ready >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { echo "netalias exited before it was ready" >&2; exit 1; }
  sleep 0.1
done
"$NETALIAS" health --http "127.0.0.1:$HTTP_PORT" --ready >/dev/null 2>&1 ||
  { echo "netalias did not become ready within 5 s" >&2; exit 1; }
python3 benches/churn.py "$PORT" "$NET" "$IMAGE" "$@"
