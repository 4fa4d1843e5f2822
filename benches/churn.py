#!/usr/bin/env python3
"""Time to answer under churn (issue 31 item 2), and whether the registry matches the engine
after it: COUNT containers started PARALLEL at a time, then REMOVE of them removed while MORE
start, then (with RESTART_STARTS > 0) RESTART_STARTS more start while the rest of the first
ones are removed, with netalias killed (SIGKILL) and started again once a quarter of those
starts have returned. For each start, the milliseconds from `docker run -d` returning to
netalias answering the container's name (polled every 2 ms; 0 when it answered at once).
Prints p50, p99 and max per phase.

After each phase, netalias's `/records` for the network is compared with `docker inspect` of
every container on it (its name, aliases, short ID and hostname, each to its address):
"registry matches" with the ms it took to, or what differs after 10 s.

netalias is started here (NETALIAS_BIN, PORT, HTTP_PORT; its PID kept in NETALIAS_PIDFILE for
the caller's cleanup).

Usage: python3 benches/churn.py PORT NETWORK IMAGE [COUNT REMOVE MORE PARALLEL]
(benches/churn.sh builds, makes the network, and cleans up.)"""
import concurrent.futures as futures
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

port, network, image = int(sys.argv[1]), sys.argv[2], sys.argv[3]
count, remove, more, parallel = (int(a) for a in (sys.argv[4:8] + ["200", "100", "50", "16"][len(sys.argv[4:8]):]))
restart_starts = int(os.environ.get("RESTART_STARTS", "50"))
http_port = int(os.environ.get("HTTP_PORT", "19395"))
binary = os.environ["NETALIAS_BIN"]
pidfile = os.environ.get("NETALIAS_PIDFILE")
IDLE = "trap 'exit 0' TERM; while true; do sleep 1; done"
server = None
# Starts whose first question was answered: netalias had the name before it was asked, and
# the time counted is the harness's own (its threads wait for the CPU under this load).
at_once = set()


def serve():
    """Starts netalias and waits until it is ready (5 s at most)."""
    global server
    server = subprocess.Popen(
        [binary, "serve", "--docker", "--listen", f"127.0.0.1:{port}",
         "--http-listen", f"127.0.0.1:{http_port}"])
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


def query(name):
    qid = random.randrange(65536)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        packet += bytes([len(label)]) + label.encode()
    packet += b"\x00" + struct.pack(">HH", 1, 1)
    return qid, packet


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
    subprocess.run(
        ["docker", "run", "-d", "--label", "netalias.test=1", "--name", name,
         "--network", network, image, "sh", "-c", IDLE],
        check=True, stdout=subprocess.DEVNULL)
    returned = time.monotonic()
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


def rm(name):
    subprocess.run(["docker", "rm", "-f", name], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def report(phase, results):
    missed = [name for name, d in results if d == float("inf")]
    delays = sorted(d for _, d in results)
    pick = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]
    print(f"{phase:<34} n={len(delays):<4} p50={pick(0.5):7.1f} ms  p99={pick(0.99):7.1f} ms  "
          f"max={delays[-1]:7.1f} ms" + (f"  never answered: {' '.join(missed)}" if missed else ""),
          flush=True)
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
try:
    serve()
    names = [f"natest-churn-{i}" for i in range(1, count + 1)]
    with futures.ThreadPoolExecutor(parallel) as pool:
        report(f"{count} parallel starts", list(zip(names, pool.map(start, names))))
        ok &= check("the parallel starts")
        extra = [f"natest-churn-x{i}" for i in range(1, more + 1)]
        removing = [pool.submit(rm, n) for n in names[:remove]]
        report(f"{more} starts during {remove} removals", list(zip(extra, pool.map(start, extra))))
        futures.wait(removing)
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
                   list(zip(late, (f.result() for f in starting))))
            futures.wait(removing)
            ok &= check("the kill and restart")
finally:
    if server is not None and server.poll() is None:
        server.terminate()
        server.wait()
sys.exit(0 if ok else 1)
