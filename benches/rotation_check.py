#!/usr/bin/env python3
"""Counts the first member of every answer for one alias, from several concurrent clients.

Usage: rotation_check.py PORT NAME TOTAL [SOCKETS] [WINDOW]
Sends TOTAL A queries for NAME to 127.0.0.1:PORT over SOCKETS sockets (default 4), each
keeping up to WINDOW (default 16) questions in flight, and reads every answer's first A
record. With strict rotation the counts differ by at most 1, provided no answer was lost (a
lost answer still took its turn). Prints the counts, the spread and the losses; exits 1 if
the spread is over 1 with nothing lost. Only loopback is ever addressed.
"""
import collections
import select
import socket
import struct
import sys
import time

from dns_wire import query, skip_name  # benches/dns_wire.py, beside this script

port, name, total = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sockets_n = int(sys.argv[4]) if len(sys.argv) > 4 else 4
window = int(sys.argv[5]) if len(sys.argv) > 5 else 16
QUESTION = query(0, name)[2:]  # everything after the id


def first_a(msg):
    if len(msg) < 12 or struct.unpack(">H", msg[6:8])[0] == 0:
        return None
    at = skip_name(msg, 12) + 4  # the question
    at = skip_name(msg, at)  # the first answer's owner
    rtype, _, _, rdlen = struct.unpack(">HHIH", msg[at:at + 10])
    if rtype != 1 or rdlen != 4:
        return None
    return socket.inet_ntoa(msg[at + 10:at + 14])


socks = []
for _ in range(sockets_n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.connect(("127.0.0.1", port))
    socks.append(s)
pending = {s: {} for s in socks}  # id -> send time
counts = collections.Counter()
sent = answered = lost = 0
next_id = 0
deadline = time.monotonic() + 120
while (sent < total or any(pending.values())) and time.monotonic() < deadline:
    for s in socks:
        while sent < total and len(pending[s]) < window:
            next_id = (next_id + 1) & 0xFFFF
            try:
                s.send(struct.pack(">H", next_id) + QUESTION)
            except ConnectionRefusedError:
                sys.exit(f"nothing answers on 127.0.0.1:{port}")
            pending[s][next_id] = time.monotonic()
            sent += 1
    readable, _, _ = select.select(socks, [], [], 0.05)
    for s in readable:
        while True:
            try:
                msg = s.recv(4096)
            except (BlockingIOError, ConnectionRefusedError):
                break
            qid = struct.unpack(">H", msg[:2])[0]
            if pending[s].pop(qid, None) is None:
                continue
            answered += 1
            first = first_a(msg)
            if first:
                counts[first] += 1
    now = time.monotonic()
    for s in socks:
        for qid in [q for q, t in pending[s].items() if now - t > 1.0]:
            del pending[s][qid]
            lost += 1
spread = max(counts.values()) - min(counts.values()) if counts else 0
summary = " ".join(f"{ip}={n}" for ip, n in sorted(counts.items()))
print(f"rotation under load: {answered} answers to {name} from {sockets_n} clients, first members "
      f"{summary}, spread {spread}, lost {lost}")
sys.exit(1 if lost == 0 and spread > 1 else 0)
