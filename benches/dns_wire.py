"""The DNS wire as the bench scripts need it: an A question, and the A addresses of a reply.

Shared by churn.py, rotation_check.py and visibility.sh's probe (each had its own copy). Plain
`struct` work on bytes, no sockets; good for the replies netalias and Docker's resolver give,
not a general parser (no EDNS, no bounds beyond what a truncated reply raises).
"""
import socket
import struct


def query(qid, name):
    """An A/IN question for `name` (a trailing dot or not), RD set, with id `qid`."""
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + struct.pack("!HH", 1, 1)


def skip_name(m, i):
    """Where the name at offset `i` of message `m` ends (labels or a compression pointer)."""
    while True:
        n = m[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += n + 1


def parse(m):
    """(id, rcode, [A addresses]) of a reply."""
    qid, flags, qd, an = struct.unpack("!HHHH", m[:8])
    i = 12
    for _ in range(qd):
        i = skip_name(m, i) + 4
    ips = []
    for _ in range(an):
        i = skip_name(m, i)
        t, _c, _ttl, rdlen = struct.unpack("!HHIH", m[i:i + 10])
        i += 10
        if t == 1 and rdlen == 4:
            ips.append(socket.inet_ntoa(m[i:i + 4]))
        i += rdlen
    return qid, flags & 0xF, ips
