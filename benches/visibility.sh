#!/usr/bin/env bash
# Time to visibility, measured beside Docker (issue 25, item 6).
#
# When does netalias start answering a new container's name, and stop answering a gone one,
# compared with Docker's embedded DNS, in the same run and from the same client?
#
# - A labelled network `visnet` (10.237.0.0/24, gateway 10.237.0.1) and a long-lived observer
#   container `visobs` on it. netalias (from this checkout's build) serves
#   `--docker --listen 10.237.0.1:53 --listen 127.0.0.1:$NA_PORT --http-listen 127.0.0.1:$HTTP_PORT`.
# - A poller thread holds two UDP sockets opened inside the observer's network namespace
#   (setns on /proc/<pid>/ns/net): one to Docker's embedded DNS (127.0.0.11:53 there), one to
#   netalias (10.237.0.1:53). It asks `NAME. A` of each in turn, one query every POLL_MS
#   (default 1 ms, so each server every ~2 ms), and keeps every reply with the monotonic time its
#   query was sent. The driver is the same python process, so its times are on the same clock.
#   The observer has `--dns 127.0.0.1 --dns-opt ndots:1`, so Docker's resolver answers an unknown
#   single-label name itself (empty NOERROR) and never forwards it off the host.
# - Per trial: a container `vis<kind><i>` is started with `docker run -d` (t0 = just before the
#   command; also reported from when it returned) and, once both servers answer its address, it
#   goes by one of five ways, COUNT of each: `docker stop -t 0`, `docker kill`,
#   `docker network disconnect`, a process that exits by itself (`sleep $SELF_EXIT_S`; t0 = the
#   engine's `die` event time) and `docker rm -f`. For starts, a server's time is the first
#   query answered with the member's address; for stops, the first query after t0 answered
#   without it (NXDOMAIN, empty, or another rcode). So every start is a start trial
#   (5 x COUNT of them) and each kind of stop has COUNT trials.
# - Output: per table, median and p99 (nearest rank) for netalias and Docker, the difference,
#   the median of the per-trial differences, and in how many trials netalias was later than
#   Docker (at all, and by more than the poll resolution, 2 x POLL_MS). Also answers that went
#   missing again after a server had first answered, and trials that timed out.
#
# Usage: bash benches/visibility.sh            (COUNT=30 per kind by default; COUNT=5 for a quick look)
# Env:   COUNT, POLL_MS (1), SELF_EXIT_S (3), WAIT_S (10, per wait), MAX_SECONDS (900, whole run),
#        NA_PORT (15537), HTTP_PORT (19537), NETALIAS_BIN (default: $CARGO_TARGET_DIR or ./target,
#        release if built, else debug; nothing is built here: `cargo build --release` first).
# Needs: a Docker engine (API 1.41+), root (setns), python3, netalias-test/busybox:1
#        (tests/build-test-image.sh, nothing pulled). NETALIAS_TEST_NO_SWEEP is honoured in that
#        only this run's resources (label netalias.vis.run=<id>, names vis*) are ever removed.
# Traffic goes only to loopback and to the network and containers this script creates; every
# container and the network carry netalias.test=1 and are removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
if [ -z "${NETALIAS_BIN:-}" ]; then
  if [ -x "$target/release/netalias" ]; then NETALIAS_BIN="$target/release/netalias"
  elif [ -x "$target/debug/netalias" ]; then NETALIAS_BIN="$target/debug/netalias"
  else
    echo "visibility: no netalias binary under $target/{release,debug}; run cargo build --release" >&2
    exit 2
  fi
fi
[ -x "$NETALIAS_BIN" ] || { echo "visibility: $NETALIAS_BIN is not executable" >&2; exit 2; }
if [ -n "$(find src -newer "$NETALIAS_BIN" -name '*.rs' -print -quit)" ]; then
  echo "visibility: WARNING: $NETALIAS_BIN is older than src/ (rebuild for this checkout)" >&2
fi
[ "$(id -u)" = 0 ] || { echo "visibility: needs root (setns into the observer's namespace)" >&2; exit 2; }
docker info >/dev/null 2>&1 || { echo "visibility: no Docker engine" >&2; exit 2; }
bash tests/build-test-image.sh

export NETALIAS_BIN
export VIS_RUN="${VIS_RUN:-$$-$(date +%s)}"
cleanup() {
  docker ps -aq --filter "label=netalias.vis.run=$VIS_RUN" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker network rm visnet >/dev/null 2>&1 || true
}
trap cleanup EXIT

py=$(cat <<'PY'
import ctypes, os, random, select, signal, socket, struct, subprocess, sys, threading, time
import urllib.request

COUNT = int(os.environ.get("COUNT", "30"))
POLL_S = float(os.environ.get("POLL_MS", "1")) / 1e3
SELF_EXIT_S = float(os.environ.get("SELF_EXIT_S", "3"))
WAIT_S = float(os.environ.get("WAIT_S", "10"))
MAX_SECONDS = float(os.environ.get("MAX_SECONDS", "900"))
NA_PORT = int(os.environ.get("NA_PORT", "15537"))
HTTP_PORT = int(os.environ.get("HTTP_PORT", "19537"))
BIN = os.environ["NETALIAS_BIN"]
RUN = os.environ["VIS_RUN"]
NET, SUBNET, GW = "visnet", "10.237.0.0/24", "10.237.0.1"
IMAGE = "netalias-test/busybox:1"
LABELS = ["--label", "netalias.test=1", "--label", f"netalias.vis.run={RUN}"]
IDLE = "trap 'exit 0' TERM; while true; do sleep 1; done"
SERVERS = ("netalias", "docker")
mono = time.monotonic
deadline = mono() + MAX_SECONDS


def docker(*args, check=True, timeout=60):
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout.strip()


# ---- DNS wire: benches/dns_wire.py (query, parse) ----
sys.path.insert(0, "benches")
from dns_wire import parse, query  # noqa: E402


# ---- the poller, with sockets opened inside the observer's network namespace ----
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


class Poller(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
        there = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        setns(there)
        try:
            self.socks = {}
            for server, addr in (("netalias", (GW, 53)), ("docker", ("127.0.0.11", 53))):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.connect(addr)
                s.setblocking(False)
                self.socks[server] = s
        finally:
            setns(home)
            os.close(home)
            os.close(there)
        self.by_fd = {s.fileno(): srv for srv, s in self.socks.items()}
        self.lock = threading.Lock()
        self.qname = None
        self.obs = {s: [] for s in SERVERS}  # (t_sent, rtt, rcode, ips)
        self.rtts = {s: [] for s in SERVERS}
        self.lost = {s: 0 for s in SERVERS}
        self.errors = {s: 0 for s in SERVERS}
        self.kinds = {}  # (server, rcode, with an address) -> replies
        self.stop = False

    def watch(self, name):
        """Polls `name` from now on (None: nothing); returns what the last name got."""
        with self.lock:
            got, self.obs = self.obs, {s: [] for s in SERVERS}
            self.qname = name
        return got

    def snapshot(self):
        with self.lock:
            return {s: list(v) for s, v in self.obs.items()}

    def run(self):
        pending = {}  # (server, id) -> (t_sent, name)
        turn = 0
        next_send = mono()
        while not self.stop:
            now = mono()
            if now >= next_send:
                next_send = now + POLL_S
                name = self.qname
                if name is not None:
                    server = SERVERS[turn]
                    turn ^= 1
                    qid = random.getrandbits(16)
                    pending[(server, qid)] = (mono(), name)
                    try:
                        self.socks[server].send(query(qid, name + "."))
                    except OSError:
                        self.errors[server] += 1
                for key in [k for k, (t, _) in pending.items() if now - t > 1.0]:
                    del pending[key]
                    self.lost[key[0]] += 1
            ready, _, _ = select.select(list(self.by_fd), [], [], max(0.0, next_send - mono()))
            for fd in ready:
                server = self.by_fd[fd]
                try:
                    data = self.socks[server].recv(4096)
                except OSError:
                    self.errors[server] += 1
                    continue
                t_recv = mono()
                try:
                    qid, rcode, ips = parse(data)
                except Exception:
                    self.errors[server] += 1
                    continue
                sent = pending.pop((server, qid), None)
                if sent is None:
                    continue
                t_sent, name = sent
                self.rtts[server].append(t_recv - t_sent)
                key = (server, rcode, bool(ips))
                self.kinds[key] = self.kinds.get(key, 0) + 1
                with self.lock:
                    if name == self.qname:
                        self.obs[server].append((t_sent, t_recv - t_sent, rcode, ips))


# ---- the engine's die events (their time is the engine's wall clock) ----
class Deaths(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.proc = subprocess.Popen(
            ["docker", "events", "--filter", f"label=netalias.vis.run={RUN}",
             "--filter", "type=container", "--filter", "event=die",
             "--format", "{{.Actor.Attributes.name}} {{.TimeNano}}"],
            stdout=subprocess.PIPE, text=True)
        self.at = {}
        self.cond = threading.Condition()

    def run(self):
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) != 2:
                continue
            offset = time.time() - mono()  # wall to monotonic, sampled per event
            with self.cond:
                self.at[parts[0]] = int(parts[1]) / 1e9 - offset
                self.cond.notify_all()

    def wait(self, name, timeout):
        with self.cond:
            self.cond.wait_for(lambda: name in self.at, timeout)
            return self.at.get(name)


# ---- trials ----
def first(obs, t0, pred):
    for t, _rtt, rcode, ips in obs:
        if t >= t0 and pred(rcode, ips):
            return t
    return None


def wait_for(poller, t0, pred):
    """Until both servers have had an answer sent at or after t0 matching pred, or WAIT_S."""
    end = mono() + WAIT_S
    while True:
        snap = poller.snapshot()
        got = {s: first(snap[s], t0, pred) for s in SERVERS}
        if all(v is not None for v in got.values()) or mono() > end:
            return got, snap
        time.sleep(0.005)


KINDS = [  # label, short name, command (None: the process exits by itself)
    ("docker stop -t 0", "s", lambda n: ["stop", "-t", "0", n]),
    ("docker kill", "k", lambda n: ["kill", n]),
    ("docker network disconnect", "d", lambda n: ["network", "disconnect", NET, n]),
    (f"exits by itself (sleep {SELF_EXIT_S:g}; t0 = die event)", "x", None),
    ("docker rm -f", "r", lambda n: ["rm", "-f", n]),
]


def trial(poller, deaths, kind, i, starts, stops, notes):
    label, short, command = kind
    name = f"vis{short}{i}"
    poller.watch(name)
    time.sleep(0.01)
    cmd = ["sh", "-c", f"sleep {SELF_EXIT_S:g}"] if command is None else ["sh", "-c", IDLE]
    t0 = mono()
    docker("run", "-d", "--name", name, "--network", NET, *LABELS, IMAGE, *cmd)
    t_ret = mono()
    ip = docker("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{NET}").IPAddress}}}}', name)
    has = lambda rcode, ips: ip in ips
    got, _ = wait_for(poller, t0, has)
    starts.append({"t0": t0, "ret": t_ret, **got})
    if any(v is None for v in got.values()):
        notes.append(f"{name}: start not seen within {WAIT_S:g}s by "
                     + ", ".join(s for s in SERVERS if got[s] is None))
    if command is None:
        t_stop = deaths.wait(name, SELF_EXIT_S + WAIT_S)
        if t_stop is None:
            notes.append(f"{name}: no die event")
            poller.watch(None)
            return
        late = [s for s in SERVERS if got[s] is None or got[s] > t_stop]
        if late:
            notes.append(f"{name}: exited before {', '.join(late)} answered it; stop not counted")
            poller.watch(None)
            return
    else:
        time.sleep(0.02)
        t_stop = mono()
        docker(*command(name))
    t_cmd_ret = mono()
    gone, _ = wait_for(poller, t_stop, lambda rcode, ips: ip not in ips)
    died = deaths.wait(name, 0.5) if short in "skr" else None
    obs = poller.watch(None)
    # answers that went missing after a server first answered, before the stop
    for s in SERVERS:
        if got[s] is not None:
            missing = sum(1 for t, _, rc, ips in obs[s] if got[s] < t < t_stop and ip not in ips)
            if missing:
                notes.append(f"{name}: {s} answered without the address {missing} time(s) "
                             "after first answering it")
        if gone[s] is None:
            notes.append(f"{name}: {s} still answered {WAIT_S:g}s after the stop ({label})")
    stops[label].append({"t0": t_stop, "ret": t_cmd_ret, "die": died, **gone})


def pct(values, p):
    v = sorted(values)
    k = max(1, -(-len(v) * p // 100))
    return v[int(k) - 1]


def table(title, rows, base, note):
    pairs = [(r["netalias"] - r[base], r["docker"] - r[base]) for r in rows
             if r["netalias"] is not None and r["docker"] is not None and r[base] is not None]
    print(f"\n{title}  (ms from {note}; {len(pairs)} of {len(rows)} trials answered by both)")
    if not pairs:
        return
    na = [a * 1e3 for a, _ in pairs]
    dk = [b * 1e3 for _, b in pairs]
    diff = [a - b for a, b in zip(na, dk)]
    res = 2 * POLL_S * 1e3
    print(f"  {'':10} {'netalias':>10} {'docker':>10} {'na - docker':>12}")
    for p, tag in ((50, "median"), (99, "p99")):
        print(f"  {tag:10} {pct(na, p):10.1f} {pct(dk, p):10.1f} {pct(na, p) - pct(dk, p):+12.1f}")
    print(f"  per-trial difference netalias - docker: median {pct(diff, 50):+.1f}, "
          f"p99 {pct(diff, 99):+.1f}, max {max(diff):+.1f}")
    print(f"  netalias later than docker: {sum(d > 0 for d in diff)} of {len(diff)} "
          f"({sum(d > res for d in diff)} by more than the {res:g} ms poll resolution)")


def main():
    print(f"visibility: {COUNT} trials per kind, poll every {POLL_S * 1e3:g} ms (each server "
          f"every {2 * POLL_S * 1e3:g} ms), binary {BIN}")
    print(f"load average at start: {open('/proc/loadavg').read().split()[:3]} on {os.cpu_count()} CPUs")
    old = docker("ps", "-aq", "--filter", "name=^vis", "--filter", "label=netalias.test=1")
    if old:
        docker("rm", "-f", *old.split())
    docker("network", "rm", NET, check=False)
    docker("network", "create", *LABELS, "--subnet", SUBNET, "--gateway", GW, NET)
    docker("run", "-d", "--name", "visobs", "--network", NET, "--dns", "127.0.0.1",
           "--dns-opt", "ndots:1", *LABELS, IMAGE, "sh", "-c", IDLE)
    pid = int(docker("inspect", "-f", "{{.State.Pid}}", "visobs"))

    log = open(f"/tmp/visibility-{RUN}.log", "w")
    env = dict(os.environ, NETALIAS_LOG=os.environ.get("NETALIAS_LOG", "warn"))
    na = subprocess.Popen([BIN, "serve", "--docker", "--listen", f"{GW}:53",
                           "--listen", f"127.0.0.1:{NA_PORT}", "--http-listen", f"127.0.0.1:{HTTP_PORT}"],
                          stdout=log, stderr=subprocess.STDOUT, env=env)
    deaths = None
    try:
        end = mono() + 30
        while True:
            if na.poll() is not None:
                raise RuntimeError(f"netalias exited ({na.returncode}); log: {log.name}")
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/readyz", timeout=1).status == 200:
                    break
            except Exception:
                pass
            if mono() > end:
                raise RuntimeError(f"netalias not ready within 30 s; log: {log.name}")
            time.sleep(0.05)
        ss = subprocess.run(["ss", "-Hlunp", "sport = :53"], capture_output=True, text=True).stdout
        others = [l for l in ss.splitlines() if f"{GW}:53" in l and f"pid={na.pid}," not in l]
        if others:
            raise RuntimeError(f"another process also listens on {GW}:53:\n" + "\n".join(others))

        deaths = Deaths()
        deaths.start()
        poller = Poller(pid)
        poller.start()
        # both servers answer the observer itself before any trial
        obs_ip = docker("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{NET}").IPAddress}}}}', "visobs")
        poller.watch("visobs")
        got, snap = wait_for(poller, mono(), lambda rc, ips: obs_ip in ips)
        poller.watch(None)
        if any(v is None for v in got.values()):
            raise RuntimeError(f"the observer's own name is not answered: {got} {snap}")

        starts, stops, notes = [], {k[0]: [] for k in KINDS}, []
        started = mono()
        done = True
        for kind in KINDS:
            for i in range(COUNT):
                if mono() > deadline:
                    done = False
                    break
                trial(poller, deaths, kind, i, starts, stops, notes)
            ids = docker("ps", "-aq", "--filter", f"label=netalias.vis.run={RUN}",
                         "--filter", f"name=^vis{kind[1]}[0-9]")
            if ids:
                docker("rm", "-f", *ids.split(), check=False)
            print(f"  {kind[0]}: {len(stops[kind[0]])} stops, {mono() - started:.0f} s so far", flush=True)
        if not done:
            print(f"MAX_SECONDS={MAX_SECONDS:g} reached: fewer trials than asked")

        print(f"\nload average at end: {open('/proc/loadavg').read().split()[:3]}")
        for s in SERVERS:
            r = poller.rtts[s]
            print(f"{s}: {len(r)} replies, rtt median {pct(r, 50) * 1e3:.2f} ms, p99 {pct(r, 99) * 1e3:.2f} ms, "
                  f"lost {poller.lost[s]}, socket errors {poller.errors[s]}")
            rcodes = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}
            print("  replies: " + ", ".join(
                f"{rcodes.get(rc, rc)}{' with A' if a else ' empty'} {n}"
                for (srv, rc, a), n in sorted(poller.kinds.items()) if srv == s))
        print("\n== START: first answer with the member's address ==")
        table("docker run -d", starts, "t0", "just before `docker run -d`")
        table("docker run -d", starts, "ret", "when `docker run -d` returned")
        print("\n== STOP: first answer without the member's address ==")
        for label, rows in stops.items():
            table(label, rows, "t0", "the die event" if label.startswith("exits") else "just before the command")
            if any(r["die"] is not None for r in rows):
                table(label, rows, "die", "the die event")
        if notes:
            print(f"\nnotes ({len(notes)}):")
            for n in notes:
                print("  " + n)
        else:
            print("\nnotes: none (no timeouts; no answer went missing after a server first answered)")
    finally:
        na.send_signal(signal.SIGTERM)
        try:
            na.wait(10)
        except subprocess.TimeoutExpired:
            na.kill()
        if deaths is not None:
            deaths.proc.terminate()


main()
PY
)
python3 -c "$py"
