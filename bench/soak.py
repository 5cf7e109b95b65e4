#!/usr/bin/env python3
"""Soak: mixed traffic against one server for a chosen time; samples its RSS, descriptors and
temporary-file (spill) bytes every 10 s and prints growth per million requests and per 100,000
connections, measured from the end of the first minute (warm-up) to the end.

Traffic, each kind from its own client threads: keep-alive hello requests; a new connection per
request (Connection: close); 1.5 MB uploads echoed back (past inbuf_overflow and
outbuf_overflow, so both spill); a slow reader of a 64 MiB stream (4 MB/s, gives up after 5 s);
clients that send a request and reset the connection (SO_LINGER 0) before reading.

    bench/soak.py                  # 10 minutes
    bench/soak.py --minutes 2      # shorter
    BENCH_PYTHON=.venv/bin/python bench/soak.py   # the interpreter whose waitress is tested

The server is `python -m waitress` (the installed one) on 127.0.0.1. Exit status 1 when any
request failed.
"""

import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HELLO = b"GET / HTTP/1.1\r\nHost: soak\r\n\r\n"
HELLO_CLOSE = b"GET / HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n"
UPLOAD = b"u" * 1_500_000
UPLOAD_REQ = b"POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n" % len(UPLOAD) + UPLOAD


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = self.connections = self.errors = 0
        self.last_error = None

    def add(self, requests=0, connections=0, error=None):
        with self.lock:
            self.requests += requests
            self.connections += connections
            if error is not None:
                self.errors += 1
                self.last_error = repr(error)


def read_response(sock, buf=b""):
    """Reads one Content-Length response; returns the bytes after it."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed in head")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise ConnectionError("bad status %r" % head[:40])
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("closed in body")
        rest += data
    return rest[length:]


def keep_alive(addr, c, stop):
    while not stop.is_set():
        try:
            with socket.create_connection(addr, timeout=10) as s:
                c.add(connections=1)
                for _ in range(1000):
                    s.sendall(HELLO)
                    read_response(s)
                    c.add(requests=1)
                    if stop.is_set():
                        return
        except OSError as e:
            c.add(error=e)


def new_connections(addr, c, stop):
    while not stop.is_set():
        try:
            with socket.create_connection(addr, timeout=10) as s:
                s.sendall(HELLO_CLOSE)
                read_response(s)
            c.add(requests=1, connections=1)
        except OSError as e:
            c.add(error=e)


def uploads(addr, c, stop):
    while not stop.is_set():
        try:
            with socket.create_connection(addr, timeout=30) as s:
                c.add(connections=1)
                for _ in range(20):
                    s.sendall(UPLOAD_REQ)
                    read_response(s)
                    c.add(requests=1)
                    if stop.is_set():
                        return
        except OSError as e:
            c.add(error=e)


def slow_reader(addr, c, stop):
    while not stop.is_set():
        try:
            with socket.create_connection(addr, timeout=10) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                s.sendall(b"GET /stream?1024 HTTP/1.1\r\nHost: soak\r\n\r\n")
                start = time.monotonic()
                got = 0
                while time.monotonic() - start < 5 and not stop.is_set():
                    if got < 4_000_000 * (time.monotonic() - start):
                        data = s.recv(65536)
                        if not data:
                            raise ConnectionError("stream ended early")
                        got += len(data)
                    else:
                        time.sleep(0.005)
            c.add(requests=1, connections=1)  # closed mid-stream: the server sees a reset
        except OSError as e:
            c.add(error=e)


def resetter(addr, c, stop):
    while not stop.is_set():
        try:
            s = socket.create_connection(addr, timeout=10)
            s.sendall(HELLO)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            c.add(connections=1)
            time.sleep(0.01)
        except OSError as e:
            c.add(error=e)


def sample(pid):
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    fds = spill = 0
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        fds += 1
        try:
            if "waitress-body-" in os.readlink(os.path.join(d, name)):
                spill += os.stat(os.path.join(d, name)).st_size
        except OSError:
            pass
    return rss, fds, spill


def scraper(addr, c, stop):
    """GET /metrics every second on one keep-alive connection (a new one after an error)."""
    sock = None
    while not stop.is_set():
        try:
            if sock is None:
                sock = socket.create_connection(addr, timeout=10)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: soak\r\n\r\n")
            rest = read_response(sock)
            if rest:
                raise ConnectionError("bytes after the scrape")
            c.add(requests=1)
        except (OSError, ValueError, IndexError) as e:
            c.add(error=e)
            if sock is not None:
                sock.close()
            sock = None
        stop.wait(1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--port", type=int, default=18087)
    ap.add_argument("--observe", action="store_true",
                    help="also write the access log (to a temporary file) and serve metrics on PORT+1, "
                         "scraped every second; the report adds the lines written and the scrapes")
    args = ap.parse_args()
    python = os.path.abspath(os.environ.get("BENCH_PYTHON", sys.executable))
    extra = []
    if args.observe:
        logdir = tempfile.mkdtemp(prefix="soak-")
        access_log = os.path.join(logdir, "access.log")
        extra = ["--access-log=" + access_log, "--metrics-listen=127.0.0.1:%d" % (args.port + 1)]
    server = subprocess.Popen(
        [python, "-m", "waitress", "--listen=127.0.0.1:%d" % args.port, "--threads=4",
         "--connection-limit=200", *extra, "soak_app:app"],
        cwd=os.path.join(HERE, "apps"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    addr = ("127.0.0.1", args.port)
    for _ in range(100):
        try:
            socket.create_connection(addr, timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    c = Counters()
    stop = threading.Event()
    kinds = [keep_alive] * 3 + [new_connections] * 2 + [uploads, slow_reader, resetter]
    threads = [threading.Thread(target=k, args=(addr, c, stop), daemon=True) for k in kinds]
    scrapes = Counters()
    if args.observe:
        threads.append(threading.Thread(
            target=scraper, args=(("127.0.0.1", args.port + 1), scrapes, stop), daemon=True))
    for t in threads:
        t.start()
    start = time.monotonic()
    end = start + args.minutes * 60
    warm = None
    print("%7s %11s %11s %8s %9s %5s %10s" % ("t(s)", "requests", "connections", "errors",
                                                "RSS(KiB)", "fds", "spill(KiB)"), flush=True)
    try:
        while time.monotonic() < end:
            time.sleep(min(args.interval, max(0, end - time.monotonic())))
            rss, fds, spill = sample(server.pid)
            t = time.monotonic() - start
            with c.lock:
                row = (t, c.requests, c.connections, c.errors, rss, fds, spill)
            print("%7.0f %11d %11d %8d %9d %5d %10d" % (row[:4] + (rss // 1024, fds, spill // 1024)),
                  flush=True)
            if warm is None and t >= 60:
                warm = row
            last = row
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        server.terminate()
        _, err = server.communicate(timeout=40)
    if warm is not None and last is not warm:
        dreq = last[1] - warm[1]
        dconn = last[2] - warm[2]
        drss = last[4] - warm[4]
        print("after the first minute: %d requests, %d connections; RSS %+d KiB (%+.2f%%), fds %+d"
              % (dreq, dconn, drss // 1024, 100.0 * drss / warm[4], last[5] - warm[5]))
        if dreq:
            print("RSS growth per million requests: %+.1f KiB" % (drss / 1024 / (dreq / 1e6)))
        if dconn:
            print("RSS growth per 100,000 connections: %+.1f KiB" % (drss / 1024 / (dconn / 1e5)))
    print("errors: %d%s" % (c.errors, (" (last: %s)" % c.last_error) if c.errors else ""))
    if args.observe:
        with open(access_log, "rb") as f:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        print("access log: %d lines for %d requests; scrapes: %d, errors %d%s"
              % (lines, c.requests, scrapes.requests, scrapes.errors,
                 (" (last: %s)" % scrapes.last_error) if scrapes.errors else ""))
        shutil.rmtree(logdir, ignore_errors=True)
        if scrapes.errors or lines < c.requests:
            return 1
    log = err.decode("utf-8", "replace")
    tracebacks = log.count("Traceback")
    print("server log: %d lines, %d tracebacks" % (log.count("\n"), tracebacks))
    return 1 if c.errors or tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
