"""A server started by a command line (``waitress-serve``, ``python -m waitress``, a
PasteDeploy script), for the end-to-end tests of those entry points.

``CommandServer`` runs the command with stdout and stderr in files of a temp dir, waits
(bounded) until every TCP port or Unix socket it should listen on accepts connections, and
stops it with SIGTERM (bounded wait, then SIGKILL), returning the exit code.
"""

import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.dirname(HERE)
BIN_DIR = os.path.dirname(sys.executable)

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def can_connect(address):
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(address)
        except OSError:
            return False
    return True


class CommandServer:
    def __init__(self, argv, workdir, cwd=TESTS_DIR, env=None):
        self.argv = list(argv)
        self.workdir = workdir
        self.cwd = cwd
        self.env = dict(os.environ if env is None else env)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.stdout_path = os.path.join(workdir, "stdout.txt")
        self.stderr_path = os.path.join(workdir, "stderr.txt")
        self.proc = None
        self.returncode = None

    def start(self):
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err)
        return self

    def wait_listening(self, addresses, timeout=START_TIMEOUT):
        """Until every address accepts a connection; raises with the output if the process
        exits or the time runs out."""
        deadline = time.monotonic() + timeout
        pending = list(addresses)
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError("server exited with %s before listening on %r:\n%s"
                                     % (self.proc.returncode, pending, self.output()))
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("server not listening on %r within %.0fs:\n%s"
                                     % (pending, timeout, self.output()))
            if can_connect(pending[0]):
                pending.pop(0)
            else:
                time.sleep(0.05)
        return self

    def run_to_end(self, timeout=STOP_TIMEOUT):
        """For commands that should exit by themselves: the exit code (kills on timeout)."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
            self._close()
            raise AssertionError("command did not exit within %.0fs:\n%s" % (timeout, self.output()))
        self._close()
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Send ``sig``; the exit code, or None if the process had to be killed."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.returncode = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
                self.returncode = None
        else:
            self.returncode = self.proc.returncode
        self._close()
        return self.returncode

    def _close(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f is not None and not f.closed:
                f.close()

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def output(self):
        return "--- stdout:\n%s\n--- stderr:\n%s" % (self.stdout(), self.stderr())

    def wait_for_stderr(self, needle, timeout=5.0):
        deadline = time.monotonic() + timeout
        while needle not in self.stderr() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.stderr()


def http_get(address, path="/", headers=(), timeout=5.0):
    """(status, headers dict, body) of a GET on a fresh connection, HTTP/1.0 style (the
    server closes after the response); ``address`` is (host, port) or a Unix socket path."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(address)
        lines = ["GET %s HTTP/1.0" % path, "Host: localhost"] + ["%s: %s" % h for h in headers]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        hdrs[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), hdrs, body
