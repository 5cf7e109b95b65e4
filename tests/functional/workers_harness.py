"""``waitress-serve --workers=N`` in a subprocess, and a load of keep-alive clients.

``Supervised`` writes an application module into a temporary directory, starts the
``waitress-serve`` of the interpreter running pytest there (so workers import the module after
fork, and a rewritten module is what a SIGHUP serves), and reads the supervisor's log.  Every
wait is bounded.

``Load`` runs client threads that each send requests over a persistent connection and record,
for every request, the worker pid that answered (the app returns it) or the failure and the pid
of the worker the connection was on.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from functional.harness import Connection, build_request

BIN_DIR = os.path.dirname(sys.executable)
WAITRESS_SERVE = os.path.join(BIN_DIR, "waitress-serve")

APP_TEMPLATE = '''
import ctypes, json, os, time
from urllib.parse import parse_qs

VERSION = %(version)r
_hoard = []


def make(global_conf, **local_conf):
    """A PasteDeploy app factory."""
    return app


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/slow":
        query = parse_qs(environ["QUERY_STRING"])
        if "id" in query:
            # Which requests reached the app (the SIGTERM test compares).
            with open("entered.txt", "a") as f:
                f.write(query["id"][0] + "\\n")
        time.sleep(float(query.get("s", ["0.5"])[0]))
    elif path == "/hang":
        # A C call that keeps the GIL (PyDLL does not release it).
        ctypes.PyDLL(None).sleep(3600)
    elif path == "/grow":
        # Keeps 64 MiB resident in this worker (max_worker_rss).
        _hoard.append(bytearray(64 * 1024 * 1024))
    elif path == "/error":
        raise RuntimeError("boom")
    body = json.dumps({"pid": os.getpid(), "version": VERSION}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''

SERVING = re.compile(r"Worker (\d+) \(pid (\d+)\) is serving")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_app(directory, version, name="wapp"):
    path = os.path.join(directory, name + ".py")
    with open(path, "w") as f:
        f.write(APP_TEMPLATE % {"version": version})
    return path


class Supervised:
    def __init__(self, directory, args, module="wapp:app", argv=None, pass_fds=(), port=None):
        self.directory = str(directory)
        self.port = port or free_port()
        self.pass_fds = tuple(pass_fds)
        if argv is not None:
            self.argv = argv
        elif any(a.startswith("--unix-socket=") for a in args):
            self.argv = [WAITRESS_SERVE] + list(args) + [module]
        else:
            self.argv = [WAITRESS_SERVE, "--listen=127.0.0.1:%d" % self.port] + list(args) + [module]
        self.log_path = os.path.join(self.directory, "server.log")
        self.proc = None

    def start(self):
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=self.pass_fds,
        )
        return self

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for(self, predicate, timeout=20.0, what="condition"):
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s; log:\n%s" % (what, text))
            if self.proc.poll() is not None and not predicate(self.log()):
                raise AssertionError(
                    "server exited (%s) while waiting for %s; log:\n%s"
                    % (self.proc.returncode, what, self.log())
                )
            time.sleep(0.05)

    def serving_pids(self, text=None):
        """Pids of the workers logged as serving, in order."""
        return [int(pid) for _, pid in SERVING.findall(self.log() if text is None else text)]

    def wait_serving(self, count, timeout=20.0):
        """Wait until ``count`` workers in all have been logged as serving."""
        self.wait_for(lambda t: len(SERVING.findall(t)) >= count, timeout, "%d serving" % count)
        return self.serving_pids()

    def signal(self, number):
        self.proc.send_signal(number)

    def wait_exit(self, timeout=60.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("server did not exit; log:\n" + self.log())

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def get(self, target="/", timeout=5.0):
        """One request on a fresh connection: (status, decoded JSON or None)."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        with Connection(sock) as conn:
            conn.send(build_request("GET", target))
            resp = conn.read_response()
        try:
            return resp.status, json.loads(resp.body)
        except ValueError:
            return resp.status, None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it has exited all the same.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


class Load:
    """``clients`` threads, each sending ``target`` over one keep-alive connection at a time."""

    def __init__(self, port, clients=4, target="/", connect=None, headers=()):
        self.port = port
        self.headers = list(headers)
        #: Makes each new connection's socket (``connect()``): plain TCP unless given (TLS).
        self.connect = connect or (lambda: socket.create_connection(("127.0.0.1", self.port), timeout=10))
        self.target = target
        self.clients = clients
        self.results = []  # (pid, status, version)
        #: The ids of the requests answered with 200, when target has "{id}".
        self.answered = set()
        self.failures = []  # (pid of the connection's worker or None, repr of the error)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def count(self):
        with self._lock:
            return len(self.results)

    def wait_count(self, n, timeout=20.0):
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                raise AssertionError("only %d of %d responses" % (self.count(), n))
            time.sleep(0.01)

    def _run(self):
        conn = None
        conn_pid = None
        serial = 0
        while not self._stop.is_set():
            serial += 1
            request_id = "%d-%d" % (threading.get_ident(), serial)
            try:
                if conn is None:
                    conn = Connection(self.connect())
                    conn_pid = None
                conn.send(build_request("GET", self.target.replace("{id}", request_id), self.headers))
                resp = conn.read_response()
                data = json.loads(resp.body) if resp.status == 200 else {}
                with self._lock:
                    self.results.append((data.get("pid"), resp.status, data.get("version")))
                    if resp.status == 200:
                        self.answered.add(request_id)
                conn_pid = data.get("pid", conn_pid)
                if resp.wants_close:
                    conn.close()
                    conn = None
            except Exception as exc:  # every failure is recorded and the client goes on
                with self._lock:
                    self.failures.append((conn_pid, repr(exc)))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
