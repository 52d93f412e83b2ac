#!/usr/bin/env python3
"""Publishes/s over the HTTP/JSON API (POST /api/v1/Publish) from one client:

  bench/http_publish.py HOST:PORT [--count N] [--mode close|keepalive|pipeline] [--depth D]
                        [--server-pid PID]

  close      a new TCP connection per request (what every call cost before keep-alive)
  keepalive  one connection, one request at a time
  pipeline   one connection, D requests written at once, then their D replies read

Plain sockets, no HTTP library, so the client costs little next to the server. Prints
"<mode>: N publishes in S s = R/s"; every reply must be 200. With --server-pid, also the
server's CPU time per publish (user + system, from /proc), which a busy machine distorts less
than the rate.
"""
import os
import argparse
import socket
import time


def request(channel, i, api_key, close):
    body = b'{"channel":"%s","data":%d}' % (channel.encode(), i)
    head = b"POST /api/v1/Publish HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    if api_key:
        head += b"Authorization: Bearer " + api_key.encode() + b"\r\n"
    if close:
        head += b"Connection: close\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed before a reply")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed inside a reply")
            rest += chunk
        self.buf = rest[length:]
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            raise RuntimeError("HTTP %d: %r" % (status, rest[:length]))


def server_cpu(pid):
    """Seconds of CPU (user + system) the process has used."""
    if not pid:
        return 0.0
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connect(host, port):
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("address")
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--mode", choices=["close", "keepalive", "pipeline"], default="keepalive")
    p.add_argument("--depth", type=int, default=16)
    p.add_argument("--api-key", default="")
    p.add_argument("--channel", default="bench")
    p.add_argument("--server-pid", type=int, default=0)
    a = p.parse_args()
    host, port = a.address.rsplit(":", 1)
    port = int(port)
    cpu_before = server_cpu(a.server_pid)
    start = time.perf_counter()
    if a.mode == "close":
        for i in range(a.count):
            s = connect(host, port)
            s.sendall(request(a.channel, i, a.api_key, True))
            Reader(s).response()
            s.close()
    else:
        s = connect(host, port)
        r = Reader(s)
        depth = a.depth if a.mode == "pipeline" else 1
        i = 0
        while i < a.count:
            n = min(depth, a.count - i)
            s.sendall(b"".join(request(a.channel, i + k, a.api_key, False) for k in range(n)))
            for _ in range(n):
                r.response()
            i += n
        s.close()
    took = time.perf_counter() - start
    line = "%s: %d publishes in %.2f s = %.0f/s" % (a.mode, a.count, took, a.count / took)
    if a.server_pid:
        cpu = server_cpu(a.server_pid) - cpu_before
        line += ", server CPU %.1f us/publish" % (cpu / a.count * 1e6)
    print(line)


if __name__ == "__main__":
    main()
