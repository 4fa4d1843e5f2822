#!/usr/bin/env python3
"""Time to answer under churn (issue 31 item 2): COUNT containers started PARALLEL at a
time, then REMOVE of them removed while MORE start. For each start, the milliseconds from
`docker run -d` returning to netalias answering the container's name (polled every 2 ms;
0 when it answered at once). Prints p50, p99 and max per phase.

Usage: python3 benches/churn.py PORT NETWORK IMAGE [COUNT REMOVE MORE PARALLEL]
(benches/churn.sh starts netalias and the network, and cleans up.)"""
import concurrent.futures as futures
import os
import random
import socket
import struct
import subprocess
import sys
import time

port, network, image = int(sys.argv[1]), sys.argv[2], sys.argv[3]
count, remove, more, parallel = (int(a) for a in (sys.argv[4:8] + ["200", "100", "50", "16"][len(sys.argv[4:8]):]))
IDLE = "trap 'exit 0' TERM; while true; do sleep 1; done"


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
    while time.monotonic() < deadline:
        if answered(sock, name):
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
    print(f"{phase:<28} n={len(delays):<4} p50={pick(0.5):7.1f} ms  p99={pick(0.99):7.1f} ms  "
          f"max={delays[-1]:7.1f} ms" + (f"  never answered: {' '.join(missed)}" if missed else ""),
          flush=True)


names = [f"natest-churn-{i}" for i in range(1, count + 1)]
with futures.ThreadPoolExecutor(parallel) as pool:
    report(f"{count} parallel starts", list(zip(names, pool.map(start, names))))
    extra = [f"natest-churn-x{i}" for i in range(1, more + 1)]
    removing = [pool.submit(rm, n) for n in names[:remove]]
    report(f"{more} starts during {remove} removals", list(zip(extra, pool.map(start, extra))))
    futures.wait(removing)
