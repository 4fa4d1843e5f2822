#!/usr/bin/env bash
# Resident memory of netalias beside dnsmasq holding the same names (issue 31, item 1).
#
# For 0 (the baseline), 1,000, 10,000 and 100,000 endpoints in one static network
# (benches/scale.sh's shape: `eN` at 10.100+.x.y on network `scale`), starts netalias with that
# config and dnsmasq with the same names in a hosts file (`ADDR eN eN.scale`), one server at a
# time, waits until each answers the last name, and reads VmRSS. Prints RSS, bytes per endpoint
# ((RSS - the same server's 0-endpoint RSS) / N) and the ratio netalias / dnsmasq, then each
# server's RSS split into anonymous memory (its heap: what it holds) and file pages (its
# binary and libraries as mapped). Each server's binary is dropped from the page cache before it
# starts, as after a reboot or a new image: the kernel maps in whole cached folios around each
# page a process touches, so a binary just built or copied (all of it cached, in large folios)
# showed 1.8 MB more file pages than the same binary read in by its own start (8.6 against
# 6.8 MB for the shipped one).
#
# The last line is netalias at the largest size again, at start and after one reload (the file
# gains an endpoint): what the parse and the diff freed must go back.
#
# Usage: bash benches/memory.sh. NETALIAS=path picks the binary; otherwise
# ${CARGO_TARGET_DIR:-target}/release/netalias (built first if missing). SIZES="1000 10000"
# overrides the sizes. Needs dnsmasq and kdig; loopback only (127.0.0.1, ports 15391-15392).
# Everything it starts is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
given="${NETALIAS:-}"
NETALIAS="${NETALIAS:-${CARGO_TARGET_DIR:-target}/release/netalias}"
SIZES="${SIZES:-1000 10000 100000}"
NA_PORT=15391
DM_PORT=15392
for tool in dnsmasq kdig; do
  command -v "$tool" >/dev/null || { echo "memory: needs $tool (apt-get install dnsmasq-base knot-dnsutils)" >&2; exit 1; }
done
if [ ! -x "$NETALIAS" ]; then
  [ -n "$given" ] || cargo build --release --quiet
  [ -x "$NETALIAS" ] || { echo "memory: no netalias binary at $NETALIAS" >&2; exit 1; }
fi

work=$(mktemp -d)
pid=""
# rss_of runs in a command substitution (a subshell): the server's pid goes to a file too, so
# this trap, in the outer shell, finds it whichever way the run ends.
cleanup() {
  [ -s "$work/pid" ] && kill "$(cat "$work/pid")" 2>/dev/null
  rm -rf "$work"
  return 0
}
trap cleanup EXIT

# The seed config plus N endpoints on network `scale` (as benches/scale.sh's make_config).
make_config() { # N OUT
  sed "s/127.0.0.1:1053/127.0.0.1:$NA_PORT/" config/netalias.toml >"$2"
  awk -v n="$1" 'BEGIN {
    print "\n[networks.scale]"
    for (i = 0; i < n; i++)
      printf "[[networks.scale.endpoints]]\nname = \"e%d\"\nipv4 = \"10.%d.%d.%d\"\n", i, 100 + int(i / 65536), int(i / 256) % 256, i % 256
  }' >>"$2"
}
make_hosts() { # N OUT
  awk -v n="$1" 'BEGIN {
    for (i = 0; i < n; i++)
      printf "10.%d.%d.%d e%d e%d.scale\n", 100 + int(i / 65536), int(i / 256) % 256, i % 256, i, i
  }' >"$2"
}

# Waits until PORT answers NAME (A) with ADDR; a server that exits or does not answer within
# LIMIT seconds (5 + 1 per 5,000 endpoints; 100,000 load in a few) stops the run with a message.
wait_answer() { # LABEL PORT NAME ADDR LIMIT
  local deadline=$((SECONDS + $5))
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$pid" 2>/dev/null || { echo "memory: $1 exited at start; its last lines:" >&2; tail -5 "$work/$1.log" >&2; exit 1; }
    [ "$(kdig @127.0.0.1 -p "$2" +short +time=1 +retry=0 "$3" A 2>/dev/null)" = "$4" ] && return 0
    sleep 0.2
  done
  echo "memory: $1 did not answer $3 on 127.0.0.1:$2 within $5 s" >&2
  exit 1
}

# "RSS ANON FILE" in KB of a server holding N endpoints, once it answers the last of them; then
# stops it.
rss_of() { # netalias|dnsmasq N [reload]
  local n=$2 name=web1 addr=172.72.0.2
  if [ "$n" -gt 0 ]; then
    local i=$((n - 1))
    name="e$i" addr="10.$((100 + i / 65536)).$((i / 256 % 256)).$((i % 256))"
  fi
  # Drops the binary's cached pages (GNU dd: nocache with count=0 is the whole file), written
  # out first: the kernel keeps a dirty page (a binary just built) whatever it is told.
  local bin="$NETALIAS"
  [ "$1" = dnsmasq ] && bin=$(command -v dnsmasq)
  sync "$bin" 2>/dev/null || true
  dd if="$bin" iflag=nocache count=0 2>/dev/null || true
  if [ "$1" = netalias ]; then
    make_config "$n" "$work/c.toml"
    NETALIAS_LOG=warn "$NETALIAS" serve --config "$work/c.toml" >"$work/netalias.log" 2>&1 &
    pid=$!
    echo "$pid" >"$work/pid"
    wait_answer netalias "$NA_PORT" "$name" "$addr" $((5 + n / 5000))
  else
    make_hosts "$n" "$work/hosts"
    [ "$n" -gt 0 ] || { name=localhost.invalid; printf '10.99.0.1 %s\n' "$name" >"$work/hosts"; addr=10.99.0.1; }
    dnsmasq --no-daemon --conf-file=/dev/null --pid-file= --port="$DM_PORT" --listen-address=127.0.0.1 \
      --bind-interfaces --no-resolv --no-hosts --addn-hosts="$work/hosts" >"$work/dnsmasq.log" 2>&1 &
    pid=$!
    echo "$pid" >"$work/pid"
    wait_answer dnsmasq "$DM_PORT" "$name" "$addr" $((5 + n / 5000))
  fi
  sleep 1 # let start-up's transient buffers be freed
  if [ "${3:-}" = reload ]; then
    # One endpoint more, appended to the same network: the reload is done when it answers.
    printf '[[networks.scale.endpoints]]\nname = "reloaded"\nipv4 = "10.99.0.9"\n' >>"$work/c.toml"
    wait_answer netalias "$NA_PORT" reloaded 10.99.0.9 $((5 + n / 5000))
    sleep 1
  fi
  awk '/^VmRSS/ {r = $2} /^RssAnon/ {a = $2} /^RssFile/ {f = $2} END {print r, a, f}' "/proc/$pid/status"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  : >"$work/pid"
}

anon_file() { # "RSS ANON FILE" -> "ANON MB / FILE MB"
  awk -v a="$2" -v f="$3" 'BEGIN { printf "%.1f / %.1f", a / 1024, f / 1024 }'
}
read -r na0 na0a na0f <<<"$(rss_of netalias 0)"
read -r dm0 dm0a dm0f <<<"$(rss_of dnsmasq 0)"
echo "netalias: $NETALIAS"
printf '%-10s %14s %14s %16s %16s %7s %22s %22s\n' endpoints "netalias RSS" "dnsmasq RSS" "netalias B/ep" "dnsmasq B/ep" ratio \
  "netalias anon / file" "dnsmasq anon / file"
awk -v na="$na0" -v dm="$dm0" -v s1="$(anon_file "$na0" "$na0a" "$na0f")" -v s2="$(anon_file "$dm0" "$dm0a" "$dm0f")" \
  'BEGIN { printf "%-10d %11.1f MB %11.1f MB %16s %16s %6.1fx %19s MB %19s MB\n", 0, na / 1024, dm / 1024, "-", "-", na / dm, s1, s2 }'
for n in $SIZES; do
  read -r na naa naf <<<"$(rss_of netalias "$n")"
  read -r dm dma dmf <<<"$(rss_of dnsmasq "$n")"
  awk -v n="$n" -v na="$na" -v dm="$dm" -v na0="$na0" -v dm0="$dm0" \
    -v s1="$(anon_file "$na" "$naa" "$naf")" -v s2="$(anon_file "$dm" "$dma" "$dmf")" 'BEGIN {
    printf "%-10d %11.1f MB %11.1f MB %16.0f %16.0f %6.1fx %19s MB %19s MB\n", n, na / 1024, dm / 1024,
      (na - na0) * 1024 / n, (dm - dm0) * 1024 / n, na / dm, s1, s2
  }'
done
# A reload must not keep what it freed: the largest size again, then once more after the file
# gains one endpoint (the whole file is parsed and diffed again).
last=$(echo $SIZES | awk '{print $NF}')
read -r nb nba nbf <<<"$(rss_of netalias "$last")"
read -r nr nra nrf <<<"$(rss_of netalias "$last" reload)"
[ -n "$nb" ] && [ -n "$nr" ] || { echo "memory: netalias at $last endpoints was not measured" >&2; exit 1; }
printf 'netalias at %d endpoints: %.1f MB (%s MB) at start, %.1f MB (%s MB) after one reload\n' "$last" \
  "$(awk -v v="$nb" 'BEGIN { print v / 1024 }')" "$(anon_file "$nb" "$nba" "$nbf")" \
  "$(awk -v v="$nr" 'BEGIN { print v / 1024 }')" "$(anon_file "$nr" "$nra" "$nrf")"
