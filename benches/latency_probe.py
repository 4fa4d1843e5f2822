#!/usr/bin/env python3
"""Times single DNS questions, one at a time, against a server on loopback.

Usage: latency_probe.py PORT COUNT GAP_SECONDS [LABEL]
Sends COUNT `app. A` queries to 127.0.0.1:PORT, each after the previous answer and a pause
of GAP_SECONDS, and prints p50/p99/p99.9/max of the round trips in ms. Run it beside a load
generator to see the latency a real client gets at that load; a query unanswered within
1 s counts as lost. Only loopback is ever addressed.
"""
import socket
import struct
import sys
import time

port, count, gap = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
label = sys.argv[4] if len(sys.argv) > 4 else str(port)
QUESTION = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03app\x00\x00\x01\x00\x01"
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(1.0)
rtts, lost = [], 0
for i in range(count):
    packet = struct.pack(">H", i & 0xFFFF) + QUESTION
    start = time.perf_counter_ns()
    sock.sendto(packet, ("127.0.0.1", port))
    try:
        while sock.recv(4096)[:2] != packet[:2]:
            pass
        rtts.append((time.perf_counter_ns() - start) / 1e6)
    except socket.timeout:
        lost += 1
    time.sleep(gap)
rtts.sort()
n = len(rtts)
if n == 0:
    print(f"{label}: no answers ({lost} lost)")
    sys.exit(1)
pick = lambda q: rtts[min(n - 1, int(n * q))]
print(f"{label} p50 {pick(0.5):.3f} p99 {pick(0.99):.3f} p99.9 {pick(0.999):.3f} "
      f"max {rtts[-1]:.3f} ms n {n} lost {lost}")
