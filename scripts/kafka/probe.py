#!/usr/bin/env python3
"""Asks a Kafka broker for its cluster metadata with one Metadata (v4) request, standard library only.

    probe.py HOST:PORT brokers           prints the live brokers, one "node_id host:port" a line
    probe.py HOST:PORT leader TOPIC P    prints the node id leading partition P of TOPIC (-1: none)

"Ready" for the scripts means the metadata lists every broker, not merely that a port is open.
Exits 1 with one line on stderr when the broker does not answer within 5 seconds.
"""
import socket
import struct
import sys


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        value = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return value

    def array(self, item):
        n = self.take(">i")
        return [item() for _ in range(max(n, 0))]


def metadata(address, topics):
    host, port = address.rsplit(":", 1)
    client = b"pageviews-probe"
    if topics is None:
        topic_field = struct.pack(">i", -1)
    else:
        topic_field = struct.pack(">i", len(topics)) + b"".join(
            struct.pack(">h", len(t)) + t.encode() for t in topics)
    # Header v1 (api key 3 = Metadata, version 4, correlation id, client id), then the body.
    request = struct.pack(">hhih", 3, 4, 1, len(client)) + client + topic_field + b"\x00"
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.settimeout(5)
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", recv_exactly(s, 4))[0]
        r = Reader(recv_exactly(s, size))
    r.take(">i")  # correlation id
    r.take(">i")  # throttle time
    brokers = r.array(lambda: (r.take(">i"), r.string(), r.take(">i"), r.string()))
    r.string()  # cluster id
    r.take(">i")  # controller id

    def partition():
        error, index, leader = r.take(">h"), r.take(">i"), r.take(">i")
        r.array(lambda: r.take(">i"))  # replicas
        r.array(lambda: r.take(">i"))  # in-sync replicas
        return index, leader, error

    def topic():
        error, name, _internal = r.take(">h"), r.string(), r.take(">b")
        return name, error, r.array(partition)

    return brokers, r.array(topic)


def recv_exactly(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def main(argv):
    if len(argv) < 3 or argv[2] not in ("brokers", "leader"):
        sys.exit(__doc__)
    try:
        topics = [argv[3]] if argv[2] == "leader" else []
        brokers, listed = metadata(argv[1], topics)
    except (OSError, struct.error, UnicodeDecodeError) as e:
        print(f"probe: {argv[1]} did not answer a metadata request: {e}", file=sys.stderr)
        sys.exit(1)
    if argv[2] == "brokers":
        for node_id, host, port, _rack in sorted(brokers):
            print(f"{node_id} {host}:{port}")
        return
    wanted = int(argv[4])
    for _name, _error, partitions in listed:
        for index, leader, error in partitions:
            if index == wanted:
                print(leader if error == 0 else -1)
                return
    print(-1)


if __name__ == "__main__":
    main(sys.argv)
