#!/usr/bin/env python3
"""Time to answer under churn (issue 31 item 2), and whether the registry matches the engine
after it: COUNT containers started PARALLEL at a time, then REMOVE of them removed while MORE
start, then (with RESTART_STARTS > 0) RESTART_STARTS more start while the rest of the first
ones are removed, with netalias killed (SIGKILL) and started again once a quarter of those
starts have returned. For each start, the milliseconds from `docker run -d` returning to
netalias answering the container's name (polled every 2 ms; 0 when it answered at once).
Prints p50, p99 and max per phase.

In the removal phase, each removed container is also timed leaving, on netalias and on
Docker's embedded DNS side by side (LEAVING=0 skips it; needs root): from just before its
`docker rm -f` is issued (the same origin for both) to the first question answered without its
address (any rcode: netalias REFUSEs or SERVFAILs a name it no longer holds, Docker's DNS
answers it empty), each server asked every POLL_MS (5) ms per leaving name, for
LEAVE_TIMEOUT (5) s at most. Docker's DNS (127.0.0.11) is asked from sockets opened inside the
network namespace of a prober container on the network (natest-churn-prober, `--dns 127.0.0.1
--dns-opt ndots:1`, so an unknown single-label name is answered empty there and never
forwarded), netalias on 127.0.0.1:PORT. A question's time is when it was sent. Prints p50, p99
and max for each, and the median of the per-container differences (netalias minus Docker;
negative: netalias dropped it first). Before the phase, both must answer each of the names
that are to go with its address (those that do not are left out, and counted).

After each phase, netalias's `/records` for the network is compared with `docker inspect` of
every container on it (its name, aliases, short ID and hostname, each to its address):
"registry matches" with the ms it took to, or what differs after 10 s.

netalias is started here (NETALIAS_BIN, PORT, HTTP_PORT; its PID kept in NETALIAS_PIDFILE for
the caller's cleanup).

Usage: python3 benches/churn.py PORT NETWORK IMAGE [COUNT REMOVE MORE PARALLEL]
(benches/churn.sh builds, makes the network, and cleans up.)"""
import concurrent.futures as futures
import ctypes
import datetime
import json
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

import dns_wire  # benches/dns_wire.py, beside this script

port, network, image = int(sys.argv[1]), sys.argv[2], sys.argv[3]
count, remove, more, parallel = (int(a) for a in (sys.argv[4:8] + ["200", "100", "50", "16"][len(sys.argv[4:8]):]))
restart_starts = int(os.environ.get("RESTART_STARTS", "50"))
http_port = int(os.environ.get("HTTP_PORT", "19395"))
binary = os.environ["NETALIAS_BIN"]
pidfile = os.environ.get("NETALIAS_PIDFILE")
IDLE = "trap 'exit 0' TERM; while true; do sleep 1; done"
leaving_on = os.environ.get("LEAVING", "1") != "0"
poll_s = float(os.environ.get("POLL_MS", "5")) / 1000
leave_timeout = float(os.environ.get("LEAVE_TIMEOUT", "5"))
# churn.sh runs this harness at nice -10 when it may (as root), so that its threads, which
# only wait, ask and time, are not starved by the load they measure (16 docker CLIs and dockerd
# on 2 cores: a poll meant every 2 ms came 30-125 ms late); what it starts (netalias, the docker
# CLI) runs at the nice churn.sh was given (CHURN_NICE), so netalias's own waits still count.
child_nice = int(os.environ.get("CHURN_NICE", os.nice(0))) - os.nice(0)


# CHURN_TRACE=FILE: each start's name, container ID and wall-clock times of `docker run -d`
# being issued and returning, one line each; netalias's log goes to FILE.netalias.log (churn.sh
# sets its filter to debug for the Docker source), and each phase also reports when netalias
# published each container, from its log: free of the harness's own waits, which the time
# to answer includes (a container published 1.1 s before `run -d` returned was measured at
# 59 ms: its thread first asked then).
trace = open(os.environ["CHURN_TRACE"], "w") if os.environ.get("CHURN_TRACE") else None
trace_lock = threading.Lock()
returned_at = {}  # name -> (container ID, wall-clock time `docker run -d` returned)


def given(argv):
    """argv run at the nice churn.sh was given, not the harness's."""
    return ["nice", "-n", str(child_nice), *argv] if child_nice > 0 else list(argv)


def pick(values, q):
    """The q quantile of sorted `values` (the q*n-th, 0-based, at most the last)."""
    return values[min(len(values) - 1, int(q * len(values)))]


PROBER = "natest-churn-prober"
SERVERS = ("netalias", "docker")
mono = time.monotonic
server = None
# Starts whose first question was answered: netalias had the name before it was asked, and
# the time counted is the harness's own (its threads wait for the CPU under this load).
at_once = set()


def serve():
    """Starts netalias and waits until it is ready (5 s at most)."""
    global server
    server = subprocess.Popen(given(
        [binary, "serve", "--docker", "--listen", f"127.0.0.1:{port}",
         "--http-listen", f"127.0.0.1:{http_port}"]),
        stderr=open(trace.name + ".netalias.log", "a") if trace is not None else None)
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(str(server.pid))
    started = time.monotonic()
    while time.monotonic() - started < 5:
        if server.poll() is not None:
            sys.exit("netalias exited before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return (time.monotonic() - started) * 1000
        except OSError:
            pass
        time.sleep(0.05)
    server.kill()
    sys.exit("netalias did not become ready within 5 s")


def query(name, qid=None):
    qid = random.randrange(65536) if qid is None else qid
    return qid, dns_wire.query(qid, name)


def answered(sock, name):
    qid, packet = query(name)
    sock.sendto(packet, ("127.0.0.1", port))
    # A reply that came late for an earlier question is skipped, not taken for this one's:
    # read until this ID's reply or the timeout.
    while True:
        try:
            reply, _ = sock.recvfrom(4096)
        except socket.timeout:
            return False
        rid, flags, _, ancount = struct.unpack(">HHHH", reply[:8])
        if rid == qid:
            return flags & 0xF == 0 and ancount > 0


def start(name):
    issued = time.time()
    run = subprocess.run(given(
        ["docker", "run", "-d", "--label", "netalias.test=1", "--name", name,
         "--network", network, image, "sh", "-c", IDLE]),
        check=True, stdout=subprocess.PIPE, text=True)
    returned = time.monotonic()
    if trace is not None:
        # To set beside netalias's debug log (its timestamps are the same wall clock, UTC).
        wall = time.time()
        cid = run.stdout.strip()
        with trace_lock:
            returned_at[name] = (cid, wall)
            trace.write(f"{name} {cid} issued={issued:.6f} returned={wall:.6f}\n")
            trace.flush()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.05)
    deadline = returned + 10
    asked = 0
    while time.monotonic() < deadline:
        asked += 1
        if answered(sock, name):
            if asked == 1:
                at_once.add(name)
            return (time.monotonic() - returned) * 1000
        time.sleep(0.002)
    return float("inf")


def rm(name, leaving=None):
    t0 = mono()
    if leaving is not None:
        leaving.watch(name, t0)
    subprocess.run(given(["docker", "rm", "-f", name]), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    if leaving is not None:
        leaving.returned(name, mono())


class Leaving(threading.Thread):
    """Times leaving containers on netalias and Docker's embedded DNS side by side: one thread,
    each tick (POLL_MS) one question per server for every watched name that server still
    answers, on a fixed cadence (not waiting for the last reply). A name is gone from a server
    at the send time of the first question answered without its address (any rcode)."""

    def __init__(self, prober_pid):
        super().__init__(daemon=True)
        libc = ctypes.CDLL(None, use_errno=True)
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
        there = os.open(f"/proc/{prober_pid}/ns/net", os.O_RDONLY)
        self.socks, self.sync = {}, {}
        if libc.setns(there, 0x40000000) != 0:  # CLONE_NEWNET, this thread only
            raise OSError(ctypes.get_errno(), "setns into the prober's network namespace")
        try:
            for table in (self.socks, self.sync):
                table["docker"] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                table["docker"].connect(("127.0.0.11", 53))
        finally:
            if libc.setns(home, 0x40000000) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
            os.close(home)
            os.close(there)
        for table in (self.socks, self.sync):
            table["netalias"] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            table["netalias"].connect(("127.0.0.1", port))
        for s in self.socks.values():
            s.setblocking(False)
        for s in self.sync.values():
            s.settimeout(0.2)
        self.by_fd = {s.fileno(): srv for srv, s in self.socks.items()}
        self.lock = threading.Lock()
        self.ips = {}       # name -> its address, set before the phase
        self.watched = {}   # name -> {"t0", "ret", "done", server: gone time or None}
        self.pending = {srv: {} for srv in SERVERS}  # qid -> (name, t_sent)
        self.next_id = {srv: random.randrange(65536) for srv in SERVERS}
        self.rtts = {srv: [] for srv in SERVERS}
        self.lost = {srv: 0 for srv in SERVERS}
        self.without = {srv: {} for srv in SERVERS}  # rcode -> replies without the address
        self.stop = False

    def ask(self, srv, name):
        """A blocking question (before the phase): the A addresses, or None."""
        qid, packet = query(name)
        s = self.sync[srv]
        s.send(packet)
        while True:
            try:
                rid, rcode, ips = dns_wire.parse(s.recv(4096))
            except socket.timeout:
                return None
            if rid == qid:
                return ips

    def baseline(self, names):
        """Keeps the names both servers answer with the engine's address (3 s each at most);
        returns those left out."""
        out = subprocess.run(
            ["docker", "inspect", "-f",
             f'{{{{.Name}}}} {{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}', *names],
            capture_output=True, text=True).stdout
        ips = dict(line.lstrip("/").split() for line in out.splitlines() if len(line.split()) == 2)
        left_out = []
        for name in names:
            ip = ips.get(name)
            end = mono() + 3
            while ip is not None and not all(ip in (self.ask(srv, name) or []) for srv in SERVERS):
                if mono() > end:
                    ip = None
                time.sleep(0.01)
            if ip is None:
                left_out.append(name)
            else:
                self.ips[name] = ip
        return left_out

    def watch(self, name, t0):
        if name in self.ips:
            with self.lock:
                # "sent": when the last question went (t0 at first), "gap": the longest wait
                # between t0 and a question or between two questions, either server
                self.watched[name] = {"t0": t0, "ret": None, "done": False, "gap": 0.0,
                                      **{srv: None for srv in SERVERS},
                                      **{("sent", srv): t0 for srv in SERVERS}}

    def returned(self, name, t):
        with self.lock:
            if name in self.watched:
                self.watched[name]["ret"] = t

    def send(self, srv, name):
        qid, packet = query(name, (self.next_id[srv] + 1) & 0xFFFF)
        self.next_id[srv] = qid
        t = mono()
        self.pending[srv][qid] = (name, t)
        try:
            self.socks[srv].send(packet)
        except OSError:
            self.lost[srv] += 1
        return t

    def run(self):
        next_tick = mono()
        order = SERVERS
        while not self.stop:
            now = mono()
            if now >= next_tick:
                next_tick = max(next_tick + poll_s, now)
                with self.lock:
                    items = [(n, w) for n, w in self.watched.items() if not w["done"]]
                for name, w in items:
                    if now - w["t0"] > leave_timeout:
                        w["done"] = True
                        continue
                    for srv in order:
                        if w[srv] is None:
                            t = self.send(srv, name)
                            w["gap"] = max(w["gap"], t - w[("sent", srv)])
                            w[("sent", srv)] = t
                order = order[::-1]  # neither server's question always goes first
                for srv in SERVERS:
                    for qid in [q for q, (_, t) in self.pending[srv].items() if now - t > 1]:
                        del self.pending[srv][qid]
                        self.lost[srv] += 1
            ready, _, _ = select.select(list(self.by_fd), [], [], max(0.0, next_tick - mono()))
            for fd in ready:
                srv = self.by_fd[fd]
                while True:
                    try:
                        data = self.socks[srv].recv(4096)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        self.lost[srv] += 1
                        break
                    t_recv = mono()
                    try:
                        qid, rcode, ips = dns_wire.parse(data)
                    except (struct.error, IndexError):
                        continue
                    sent = self.pending[srv].pop(qid, None)
                    if sent is None:
                        continue
                    name, t_sent = sent
                    self.rtts[srv].append(t_recv - t_sent)
                    w = self.watched.get(name)
                    if w is None or self.ips[name] in ips:
                        continue
                    self.without[srv][rcode] = self.without[srv].get(rcode, 0) + 1
                    if w[srv] is None or t_sent < w[srv]:
                        w[srv] = t_sent
                    if all(w[s] is not None for s in SERVERS):
                        w["done"] = True

    def wait(self):
        """Until every watched name is gone from both or timed out (or the poller stopped)."""
        end = mono() + leave_timeout + 10
        while self.is_alive() and mono() < end:
            with self.lock:
                if all(w["done"] for w in self.watched.values()):
                    return
            time.sleep(0.02)
        print("  leaving: the poller " + ("stopped" if not self.is_alive() else "did not finish"),
              flush=True)

    def report(self, left_out):
        rows = list(self.watched.values())
        print(f"  leaving, {len(rows)} removed containers, ms from just before `docker rm -f` was issued "
              f"to the first question answered without the address (each server every "
              f"{poll_s * 1000:g} ms, {leave_timeout:g} s at most)"
              + (f"; left out, not answered by both before: {len(left_out)}" if left_out else ""),
              flush=True)
        for srv in SERVERS:
            d = sorted((w[srv] - w["t0"]) * 1000 for w in rows if w[srv] is not None)
            still = len(rows) - len(d)
            r = sorted(self.rtts[srv])
            if d:
                print(f"    {srv:<9} p50={pick(d, 0.5):7.1f} ms  p99={pick(d, 0.99):7.1f} ms  "
                      f"max={d[-1]:7.1f} ms" + (f"  still answered after {leave_timeout:g} s: {still}" if still else "")
                      + (f"  (question rtt median {pick(r, 0.5) * 1000:.2f} ms, p99 {pick(r, 0.99) * 1000:.2f} ms, "
                         f"{len(r)} replies, {self.lost[srv]} lost"
                         + ")" if r else ""), flush=True)
            else:
                print(f"    {srv:<9} none gone within {leave_timeout:g} s ({len(r)} replies, "
                      f"{self.lost[srv]} lost)", flush=True)
            rcodes = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}
            print(f"      replies without the address: " + (", ".join(
                f"{rcodes.get(rc, rc)} {n}" for rc, n in sorted(self.without[srv].items())) or "none"),
                flush=True)
        both = [w for w in rows if w["netalias"] is not None and w["docker"] is not None]
        if both:
            diff = sorted((w["netalias"] - w["docker"]) * 1000 for w in both)
            print(f"    netalias - docker per container: median {pick(diff, 0.5):+.1f} ms, "
                  f"p1 {pick(diff, 0.01):+.1f}, p99 {pick(diff, 0.99):+.1f}; of {len(diff)}, netalias first "
                  f"by more than the {poll_s * 1000:g} ms poll in {sum(x < -poll_s * 1000 for x in diff)}, "
                  f"docker first so in {sum(x > poll_s * 1000 for x in diff)}, within it "
                  f"{sum(abs(x) <= poll_s * 1000 for x in diff)}", flush=True)
        gaps = sorted(w["gap"] * 1000 for w in rows)
        print(f"    poller's cadence: the longest wait for a question per container, p50 "
              f"{pick(gaps, 0.5):.1f} ms, p99 {pick(gaps, 0.99):.1f} ms, max {gaps[-1]:.1f} ms "
              f"(the harness's threads waiting for the CPU)", flush=True)
        rets = [w for w in both if w["ret"] is not None]
        if rets:
            for srv in SERVERS:
                d = sorted((w[srv] - w["ret"]) * 1000 for w in rets)
                print(f"    {srv:<9} from `docker rm -f` returning: p50={pick(d, 0.5):+7.1f} ms  "
                      f"p99={pick(d, 0.99):+7.1f} ms", flush=True)
            took = sorted((w["ret"] - w["t0"]) * 1000 for w in rets)
            print(f"    `docker rm -f` itself took p50={pick(took, 0.5):.0f} ms, max={took[-1]:.0f} ms",
                  flush=True)


def prober():
    """A container on the network whose namespace Docker's DNS is asked from; its PID."""
    subprocess.run(
        ["docker", "run", "-d", "--label", "netalias.test=1", "--name", PROBER,
         "--network", network, "--dns", "127.0.0.1", "--dns-opt", "ndots:1", image, "sh", "-c", IDLE],
        check=True, stdout=subprocess.DEVNULL)
    return int(subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", PROBER],
                              capture_output=True, text=True, check=True).stdout)


def published_at():
    """Container ID -> wall-clock time netalias first published it, from its debug log."""
    first = {}
    with open(trace.name + ".netalias.log") as log:
        for line in log:
            m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})\d*Z .*container changed id=\"([0-9a-f]+)\"", line)
            if m and m.group(2) not in first:
                when = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc)
                first[m.group(2)] = when.timestamp()
    return first


def report(phase, results, from_log=True):
    """from_log: also when netalias published each (not across a restart: the killed one's
    log and the new one's are one file)."""
    missed = [name for name, d in results if d == float("inf")]
    delays = sorted(d for _, d in results)
    print(f"{phase:<34} n={len(delays):<4} p50={pick(delays, 0.5):7.1f} ms  p99={pick(delays, 0.99):7.1f} ms  "
          f"max={delays[-1]:7.1f} ms" + (f"  never answered: {' '.join(missed)}" if missed else ""),
          flush=True)
    if trace is not None and from_log:
        first = published_at()
        published = sorted((first[returned_at[name][0]] - returned_at[name][1]) * 1000
                           for name, _ in results
                           if name in returned_at and returned_at[name][0] in first)
        if published:
            print(f"  published by netalias (its log), ms after `docker run -d` returned (negative: "
                  f"before): n={len(published)} p50={pick(published, 0.5):.1f} p99={pick(published, 0.99):.1f} "
                  f"max={published[-1]:.1f}", flush=True)
    slow = sorted(((d, name) for name, d in results if 50 < d < float("inf")), reverse=True)
    first = sum(name in at_once for name, _ in results)
    print(f"  answered at the first question: {first} of {len(results)}", flush=True)
    if slow:
        print("  over 50 ms: " + " ".join(f"{name} ({d:.0f}{', at the first question' if name in at_once else ''})"
                                         for d, name in slow[:10]), flush=True)


def engine_names():
    """name -> {address} on the network, from `docker inspect` of every container on it."""
    ids = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", f"network={network}"],
                         capture_output=True, text=True, check=True).stdout.split()
    expected = {}
    if not ids:
        return expected
    out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True).stdout
    for c in json.loads(out or "[]"):
        if not c["State"]["Running"]:
            continue
        ep = (c["NetworkSettings"]["Networks"] or {}).get(network)
        if not ep or not ep.get("IPAddress"):
            continue
        names = [c["Name"].lstrip("/"), c["Id"][:12], c["Config"]["Hostname"], *(ep.get("Aliases") or [])]
        for n in names:
            expected.setdefault(n.lower(), set()).add(ep["IPAddress"])
    return expected


def registry_names():
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/records", timeout=5) as r:
        records = json.load(r).get(network, {})
    return {name.lower(): {m.split()[0] for m in members} for name, members in records.items()}


def check(phase):
    """Compares netalias's records for the network with the engine's, until they match or
    10 s have passed."""
    expected = engine_names()
    started = time.monotonic()
    while True:
        try:
            got = registry_names()
        except OSError as e:
            got = {"(no /records)": {str(e)}}
        if got == expected:
            print(f"  registry matches docker inspect after {phase}: {len(expected)} names, "
                  f"in {(time.monotonic() - started) * 1000:.0f} ms", flush=True)
            return True
        if time.monotonic() - started > 10:
            missing = sorted(n for n in expected if expected[n] - got.get(n, set()))
            extra = sorted(n for n in got if got[n] - expected.get(n, set()))
            print(f"  REGISTRY DIFFERS from docker inspect after {phase} (10 s): "
                  f"{len(missing)} names missing or short {missing[:8]}, "
                  f"{len(extra)} with addresses the engine does not give {extra[:8]}", flush=True)
            return False
        time.sleep(0.05)


ok = True
leaving = None
if leaving_on and os.geteuid() != 0:
    print("churn: not root, so leaving containers are not timed beside Docker's DNS (LEAVING=0 to "
          "say so)", file=sys.stderr)
    leaving_on = False
try:
    prober_pid = prober() if leaving_on else None
    serve()
    names = [f"natest-churn-{i}" for i in range(1, count + 1)]
    with futures.ThreadPoolExecutor(parallel) as pool:
        first_phase = list(zip(names, pool.map(start, names)))
        report(f"{count} parallel starts", first_phase)
        ok &= check("the parallel starts")
        extra = [f"natest-churn-x{i}" for i in range(1, more + 1)]
        left_out = []
        if leaving_on:
            leaving = Leaving(prober_pid)
            left_out = leaving.baseline(names[:remove])
            leaving.start()
        removing = [pool.submit(rm, n, leaving) for n in names[:remove]]
        second_phase = list(zip(extra, pool.map(start, extra)))
        report(f"{more} starts during {remove} removals", second_phase)
        # Issue 31's clause is over the churn's starts (these two phases; the restart's own
        # time is the third's).
        report("the churn's starts (both phases)", first_phase + second_phase)
        futures.wait(removing)
        if leaving is not None:
            leaving.wait()
            leaving.stop = True
            leaving.report(left_out)
        ok &= check("the starts during removals")
        if restart_starts > 0:
            late = [f"natest-churn-r{i}" for i in range(1, restart_starts + 1)]
            removing = [pool.submit(rm, n) for n in names[remove:]]
            starting = [pool.submit(start, n) for n in late]
            while sum(f.done() for f in starting) < len(starting) // 4:
                time.sleep(0.01)
            server.send_signal(signal.SIGKILL)
            server.wait()
            ready = serve()
            print(f"  netalias killed (SIGKILL) after {len(starting) // 4} of these starts, "
                  f"ready again in {ready:.0f} ms", flush=True)
            report(f"{restart_starts} starts, netalias restarted",
                   list(zip(late, (f.result() for f in starting))), from_log=False)
            futures.wait(removing)
            ok &= check("the kill and restart")
finally:
    if server is not None and server.poll() is None:
        server.terminate()
        server.wait()
sys.exit(0 if ok else 1)
