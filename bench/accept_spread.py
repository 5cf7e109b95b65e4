"""How new connections spread over 2 workers: one shared accept queue (what ``--workers``
does) against a SO_REUSEPORT socket per worker, under an uneven load.

Usage: .venv/bin/python bench/accept_spread.py [SECONDS]   (default 10 per mode)

The app has a light endpoint and a heavy one (30 ms of CPU in Python).  Two client threads
send only heavy requests and six only light ones, every request on a new connection, so which
worker accepts a connection decides whether a light request waits behind heavy ones.  For each
mode the script prints, per worker, the light and heavy requests it served, and the light
requests' latency (median, 99th percentile) and rate.  The client is Python on the same machine:
compare the modes with each other in one run, not with other figures.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

APP = textwrap.dedent(
    """
    import os, time

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/heavy":
            end = time.process_time() + 0.03
            while time.process_time() < end:
                pass
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    """
)

REUSEPORT_LAUNCHER = textwrap.dedent(
    """
    import os, signal, socket, sys
    sys.path.insert(0, sys.argv[2])
    port = int(sys.argv[1])
    pids = []
    for n in range(2):
        pid = os.fork()
        if pid == 0:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(1024)
            from waitress import serve
            from spread_app import app
            serve(app, sockets=[sock], threads=4, _quiet=True)
            os._exit(0)
        pids.append(pid)
    signal.sigwait({signal.SIGTERM})
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    for pid in pids:
        os.waitpid(pid, 0)
    """
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head[:100])
    return int(body)


def wait_up(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request(port, "/light")
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def load(port, seconds):
    results = []  # (kind, pid, latency)
    errors = []
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def client(kind):
        while time.monotonic() < stop:
            started = time.monotonic()
            try:
                pid = request(port, "/" + kind)
            except Exception as exc:
                errors.append(repr(exc))
                continue
            with lock:
                results.append((kind, pid, time.monotonic() - started))

    threads = [threading.Thread(target=client, args=("heavy",)) for _ in range(2)]
    threads += [threading.Thread(target=client, args=("light",)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def report(name, results, errors, seconds):
    pids = sorted({pid for _, pid, _ in results})
    print(f"{name}:")
    for n, pid in enumerate(pids, 1):
        light = sum(1 for k, p, _ in results if p == pid and k == "light")
        heavy = sum(1 for k, p, _ in results if p == pid and k == "heavy")
        print(f"  worker {n}: {light} light, {heavy} heavy")
    lat = sorted(l for k, _, l in results if k == "light")
    if lat:
        p50 = lat[len(lat) // 2] * 1000
        p99 = lat[int(len(lat) * 0.99)] * 1000
        print(f"  light: {len(lat) / seconds:.0f} req/s, median {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"  errors: {len(errors)}")


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    workdir = tempfile.mkdtemp(prefix="spread-")
    with open(os.path.join(workdir, "spread_app.py"), "w") as f:
        f.write(APP)
    bindir = os.path.dirname(sys.executable)
    modes = {
        "shared accept queue (--workers=2)": lambda port: [
            os.path.join(bindir, "waitress-serve"), "--workers=2", "--threads=4",
            "--listen=127.0.0.1:%d" % port, "spread_app:app",
        ],
        "SO_REUSEPORT socket per worker": lambda port: [
            sys.executable, "-c", REUSEPORT_LAUNCHER, str(port), workdir,
        ],
    }
    for name, argv in modes.items():
        port = free_port()
        proc = subprocess.Popen(argv(port), cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_up(port)
            results, errors = load(port, seconds)
            report(name, results, errors, seconds)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


if __name__ == "__main__":
    main()
