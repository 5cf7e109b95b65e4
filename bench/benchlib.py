"""Shared machinery for the benchmark scripts (stdlib only).

Two virtual environments keep the two packages named ``waitress`` apart:

* ``bench/.venv-waitress``: the real Waitress (3.0.2) and Granian, from PyPI,
  pinned in ``bench/requirements-peers.txt``.
* ``bench/.venv-ours``: this project, installed with ``pip install <repo root>``.

Servers are started in their own session (process group) so that every
process they spawn can be killed; a registry of live servers is cleaned up at
exit and on SIGTERM/SIGINT/SIGHUP.
"""

from __future__ import annotations

import atexit
import os
import re
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
APPS_DIR = BENCH_DIR / "apps"
RESULTS_DIR = BENCH_DIR / "results"
VENV_PEERS = BENCH_DIR / ".venv-waitress"
VENV_OURS = BENCH_DIR / ".venv-ours"
PEER_REQUIREMENTS = BENCH_DIR / "requirements-peers.txt"

HOST = "127.0.0.1"  # loopback only, always
APP_TARGET = "hello_app:app"
EXPECTED_BODY = b"Hello, World!"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Process bookkeeping: everything we start is killed on the way out.
# --------------------------------------------------------------------------

_LIVE: dict[int, "Server"] = {}


def _cleanup_all() -> None:
    for srv in list(_LIVE.values()):
        try:
            srv.stop(grace=2.0)
        except Exception:  # pragma: no cover - best effort at exit
            pass


def _on_signal(signum, frame):  # noqa: ARG001
    _cleanup_all()
    # Re-raise as a normal exit so finally blocks run.
    raise SystemExit(128 + signum)


def install_cleanup_handlers() -> None:
    atexit.register(_cleanup_all)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)


def run(cmd, *, timeout: float, check: bool = True, log_file: Path | None = None,
        env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run a command with a bounded wait; output to log_file or captured."""
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as fh:
            fh.write(("$ " + " ".join(map(str, cmd)) + "\n").encode())
            fh.flush()
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout,
                                  env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    else:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, cwd=cwd,
                              stdin=subprocess.DEVNULL, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}"
                           + (f"\n{proc.stdout}\n{proc.stderr}" if log_file is None else
                              f"\nsee {log_file}"))
    return proc


def tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


# --------------------------------------------------------------------------
# Tools and environments
# --------------------------------------------------------------------------

def _apt_install(what: str, debian_pkg: str) -> None:
    if os.geteuid() != 0:
        raise RuntimeError(f"{what} is not installed; install Debian package {debian_pkg}")
    log(f"{what} missing: apt-get install -y {debian_pkg}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update"], timeout=300, env=env)
    run(["apt-get", "install", "-y", debian_pkg], timeout=600, env=env)


def ensure_tool(name: str, debian_pkg: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    _apt_install(name, debian_pkg)
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} still missing after installing {debian_pkg}")
    return path


def ensure_file(path: str, debian_pkg: str) -> None:
    """A file a build needs (a C header), from `debian_pkg` if it is missing."""
    if not Path(path).exists():
        _apt_install(path, debian_pkg)
        if not Path(path).exists():
            raise RuntimeError(f"{path} still missing after installing {debian_pkg}")


def base_python() -> str:
    return os.environ.get("BENCH_PYTHON", "python3")


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _make_venv(venv: Path, logf: Path) -> None:
    if venv_python(venv).exists():
        return
    py = base_python()
    log(f"creating {venv.name} with {py}")
    run([py, "-m", "venv", str(venv)], timeout=300, log_file=logf)
    run([str(venv_python(venv)), "-m", "pip", "install", "-q", "--upgrade", "pip"],
        timeout=600, log_file=logf, check=False)


def ensure_peer_venv(logf: Path) -> None:
    """The peers of requirements-peers.txt, installed once; reinstalled if the pins change."""
    stamp = VENV_PEERS / ".bench-stamp"
    want = PEER_REQUIREMENTS.read_text()
    if stamp.exists() and stamp.read_text() == want and (VENV_PEERS / "bin" / "granian").exists():
        return
    if "bjoern" in want:
        ensure_file("/usr/include/ev.h", "libev-dev")  # bjoern's C extension builds against libev
    _make_venv(VENV_PEERS, logf)
    log(f"installing peers into {VENV_PEERS.name}: "
        + ", ".join(l.strip() for l in want.splitlines() if l.strip() and not l.lstrip().startswith("#")))
    run([str(venv_python(VENV_PEERS)), "-m", "pip", "install", "-q", "-r", str(PEER_REQUIREMENTS)],
        timeout=900, log_file=logf)
    stamp.write_text(want)


def install_ours(logf: Path, skip_install: bool, src: Path | None = None) -> tuple[bool, str]:
    """Install this project (or checkout `src`) into .venv-ours; return (usable, message).

    Never raises: a missing or broken build makes ours a skipped contender.
    """
    src = Path(src) if src else REPO_ROOT
    try:
        _make_venv(VENV_OURS, logf)
        py = str(venv_python(VENV_OURS))
        if not skip_install:
            log(f"pip install {src} into {VENV_OURS.name} (log: {logf})")
            proc = run([py, "-m", "pip", "install", "--no-deps", "--force-reinstall", str(src)],
                       timeout=1800, log_file=logf, check=False)
            if proc.returncode != 0:
                errs = [l for l in tail(logf, 200).splitlines() if l.startswith("ERROR")]
                first = errs[-1] if errs else f"exit {proc.returncode}"
                return False, (f"`pip install {src}` failed: {first} (full log: {logf})\n"
                               + tail(logf, 12))
            # Now the package's own dependencies, if any (no-op when satisfied).
            run([py, "-m", "pip", "install", "-q", str(src)], timeout=1800, log_file=logf, check=False)
        return check_ours_importable()
    except Exception as exc:  # noqa: BLE001
        return False, f"could not set up {VENV_OURS.name}: {exc}"


def check_ours_importable() -> tuple[bool, str]:
    py = venv_python(VENV_OURS)
    if not py.exists():
        return False, f"{VENV_OURS} does not exist"
    code = ("import waitress, waitress._native as n, sys; "
            "print(waitress.__file__); print(n.__file__)")
    try:
        proc = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=60,
                              cwd="/", stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, "importing waitress._native timed out (60 s)"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return False, f"`import waitress._native` fails in {VENV_OURS.name}: {last}"
    paths = proc.stdout.split()
    if not paths or not paths[0].startswith(str(VENV_OURS)):
        return False, f"`waitress` in {VENV_OURS.name} resolves outside the venv: {paths[:1]}"
    return True, f"our waitress: {paths[1] if len(paths) > 1 else paths[0]}"


def pip_version_of(venv: Path, dist: str) -> str:
    try:
        proc = subprocess.run([str(venv_python(venv)), "-c",
                               f"import importlib.metadata as m; print(m.version({dist!r}))"],
                              capture_output=True, text=True, timeout=60, cwd="/")
        return proc.stdout.strip() or "?"
    except Exception:  # noqa: BLE001
        return "?"


def git_rev() -> str:
    try:
        proc = subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=20)
        return proc.stdout.strip() or "?"
    except Exception:  # noqa: BLE001
        return "?"


def wrk_version() -> str:
    try:
        proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        return (proc.stdout + proc.stderr).splitlines()[0].split(" Copyright")[0].strip()
    except Exception:  # noqa: BLE001
        return "?"


def machine_info() -> dict:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        loadavg = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        loadavg = []
    return {"cpu_model": model, "nproc": os.cpu_count(), "loadavg": loadavg,
            "kernel": os.uname().release}


# --------------------------------------------------------------------------
# Contenders
# --------------------------------------------------------------------------

@dataclass
class Contender:
    name: str          # key used on the command line and in JSON
    label: str         # shown in tables
    kind: str          # "waitress" | "ours" | "granian" | "gunicorn" | "bjoern" | "fastwsgi"
    blocking_threads: int | None = None  # granian only; None = Granian's default
    extra: tuple[str, ...] = ()  # ours only: more options (e.g. --dispatch=inline)

    def command(self, port: int, threads: int, app: str = APP_TARGET) -> list[str]:
        if self.kind in ("waitress", "ours"):
            venv = VENV_PEERS if self.kind == "waitress" else VENV_OURS
            return [str(venv_python(venv)), "-m", "waitress", f"--listen={HOST}:{port}",
                    f"--threads={threads}", *self.extra, app]
        if self.kind == "granian":
            cmd = [str(VENV_PEERS / "bin" / "granian"), "--interface", "wsgi", "--http", "1",
                   "--host", HOST, "--port", str(port), "--workers", "1",
                   "--working-dir", str(APPS_DIR)]
            if self.blocking_threads is not None:
                cmd += ["--blocking-threads", str(self.blocking_threads)]
            return cmd + [app]
        if self.kind == "gunicorn":
            # gthread worker: one process, `threads` threads; sendfile for
            # wsgi.file_wrapper on files with fileno() (gunicorn's default).
            return [str(VENV_PEERS / "bin" / "gunicorn"), "-k", "gthread", "--threads", str(threads),
                    "-w", "1", "-b", f"{HOST}:{port}", "--chdir", str(APPS_DIR),
                    "--graceful-timeout", "3", app]
        if self.kind in ("bjoern", "fastwsgi"):
            # No command line of their own: apps/run_c_server.py calls their run().
            return [str(venv_python(VENV_PEERS)), str(APPS_DIR / "run_c_server.py"), self.kind,
                    HOST, str(port), app]
        raise ValueError(self.kind)


CONTENDERS = {
    "waitress": Contender("waitress", "Waitress 3.0.2", "waitress"),
    "granian": Contender("granian", "Granian (default blocking threads)", "granian"),
    "granian-bt4": Contender("granian-bt4", "Granian (4 blocking threads)", "granian", 4),
    "ours": Contender("ours", "ours (Swift)", "ours"),
}


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def server_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(APPS_DIR)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONSTARTUP", None)
    return env


@dataclass
class Server:
    cmd: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None
    port: int = 0
    extra: dict = field(default_factory=dict)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.log_path, "ab")
        fh.write(("$ " + " ".join(self.cmd) + "\n").encode())
        fh.flush()
        self.proc = subprocess.Popen(self.cmd, stdout=fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=str(APPS_DIR), env=server_env(),
                                     start_new_session=True)
        fh.close()
        _LIVE[self.proc.pid] = self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float, hello: bool = True, tls=None) -> None:
        """Poll until the port accepts and (if `hello`) a GET / returns the hello body."""
        deadline = time.monotonic() + timeout
        last_err = "no attempt"
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"server exited with {self.proc.returncode} before it was ready; "
                                   f"log tail:\n{tail(self.log_path)}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0):
                    pass
                break
            except OSError as exc:
                last_err = str(exc)
                time.sleep(0.05)
        else:
            raise RuntimeError(f"server not accepting on {HOST}:{self.port} after {timeout:.0f} s "
                               f"({last_err}); log tail:\n{tail(self.log_path)}")
        if not hello:
            return
        remaining = max(1.0, deadline - time.monotonic())
        try:
            status, body = http_get(self.port, timeout=remaining, tls=tls)
        except (OSError, RuntimeError, ValueError) as exc:
            raise RuntimeError(f"sanity GET / failed ({exc or type(exc).__name__}) within {timeout:.0f} s; "
                               f"log tail:\n{tail(self.log_path)}") from exc
        if status != 200 or body != EXPECTED_BODY:
            raise RuntimeError(f"sanity GET / gave status {status} body {body[:80]!r}")

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the server, bounded wait, then SIGKILL its whole process group."""
        if self.proc is None:
            return None
        pgid = self.proc.pid  # leader of its own session/group
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log(f"server pid {pgid} ignored SIGTERM for {grace:.0f} s: SIGKILL")
        # Stragglers (e.g. Granian workers) and the leader if it hung.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _LIVE.pop(pgid, None)
        return self.proc.returncode


def env_default(name: str, default):
    """The environment variable `name` converted to the type of `default`, or `default`."""
    v = os.environ.get(name)
    return type(default)(v) if v not in (None, "") else default


def _session_stats(sid: int):
    """(pid, fields of /proc/PID/stat from field 3 on) of every live process in session `sid`."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            data = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = data[data.rfind(")") + 2:].split()
        # rest[0] is field 3 (state): session is field 6.
        try:
            if int(rest[3]) == sid:
                yield int(entry), rest
        except (IndexError, ValueError):
            continue


def session_cpu_split(sid: int) -> tuple:
    """(user, system) seconds of every live process in session `sid` (all threads included)."""
    tck = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for _, rest in _session_stats(sid):
        try:
            user += int(rest[11])    # utime, field 14
            system += int(rest[12])  # stime, field 15
        except (IndexError, ValueError):
            continue
    return user / tck, system / tck


def session_peak_rss_kib(sid: int) -> int:
    """Sum of VmHWM (peak resident set) over the live processes of session `sid`, in KiB.

    A multi-process server (a supervisor and its workers) counts every process; pages they
    share (forked, copy-on-write) count once per process, as VmHWM does.
    """
    total = 0
    for pid, _ in _session_stats(sid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
                    break
        except (OSError, ValueError, IndexError):
            continue
    return total


def session_cpu_seconds(sid: int) -> float:
    """utime+stime of every live process in session `sid` (all threads included)."""
    return sum(session_cpu_split(sid))


# --------------------------------------------------------------------------
# Minimal HTTP clients (stdlib)
# --------------------------------------------------------------------------

REQUEST = (f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: bench\r\n\r\n").encode()


def _parse_head(buf: bytes) -> tuple[int, int, int] | None:
    """Return (status, header_end, content_length) once the head is complete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    clen = -1
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            clen = int(v.strip())
        elif k.strip().lower() == "transfer-encoding":
            raise RuntimeError("chunked response from hello app: unexpected for this harness")
    if clen < 0:
        raise RuntimeError("response without Content-Length")
    return status, end + 4, clen


def tls_client_context():
    """An ssl client context for the benchmark's own self-signed certificates (no verification)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_tls_certificate(directory: Path) -> tuple[str, str]:
    """A P-256 self-signed certificate and key for 127.0.0.1 (openssl req), in `directory`."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-subj", "/CN=127.0.0.1", "-days", "2", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return str(cert), str(key)


def _connect(port: int, timeout: float, tls=None) -> socket.socket:
    """A connected socket; with `tls` (an ssl.SSLContext), after a blocking TLS handshake."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    if tls is not None:
        s = tls.wrap_socket(s, server_hostname=HOST)
    return s


def _recv_ready(s: socket.socket) -> bytes | None:
    """What a readable non-blocking socket has (plain or TLS); None if nothing yet."""
    try:
        chunk = s.recv(65536)
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return None  # TLS: a record not complete yet, or only a session ticket
    pending = getattr(s, "pending", None)
    while chunk and pending is not None and pending():
        chunk += s.recv(65536)
    return chunk


def http_get(port: int, timeout: float = 10.0, tls=None) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    with _connect(port, timeout, tls) as s:
        s.sendall(REQUEST)
        buf = b""
        while True:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed before a full response")
            buf += chunk
            parsed = _parse_head(buf)
            if parsed and len(buf) >= parsed[1] + parsed[2]:
                return parsed[0], buf[parsed[1]:parsed[1] + parsed[2]]


def drive_requests(port: int, total: int, conns: int, timeout: float,
                   expected: bytes = EXPECTED_BODY, tls=None) -> float:
    """Send exactly `total` keep-alive GET / requests over `conns` connections.

    Each connection has one request in flight at a time (like wrk). Every
    response must be 200 with the body `expected` (the hello body unless
    told). With `tls` (an ssl.SSLContext) the connections speak HTTPS, each
    handshake done before its first request. Returns the elapsed seconds.
    """
    sel = selectors.DefaultSelector()
    socks = []
    start = time.monotonic()
    deadline = start + timeout
    issued = 0
    done = 0
    try:
        for _ in range(min(conns, total)):
            s = _connect(port, 30, tls)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            socks.append(s)
            s.send(REQUEST)
            issued += 1
            sel.register(s, selectors.EVENT_READ, bytearray())
        while done < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"load client timed out after {timeout:.0f} s ({done}/{total} done)")
            for key, _ in sel.select(timeout=1.0):
                s, buf = key.fileobj, key.data
                chunk = _recv_ready(s)
                if chunk is None:
                    continue
                if not chunk:
                    raise RuntimeError(f"server closed a connection ({done}/{total} done)")
                buf += chunk
                while True:
                    parsed = _parse_head(bytes(buf[:8192]))
                    if not parsed:
                        break
                    status, hend, clen = parsed
                    if len(buf) < hend + clen:
                        break
                    if status != 200 or bytes(buf[hend:hend + clen]) != expected:
                        raise RuntimeError(f"bad response: status {status}")
                    del buf[:hend + clen]
                    done += 1
                    if issued < total:
                        s.send(REQUEST)
                        issued += 1
        return time.monotonic() - start
    finally:
        for s in socks:
            try:
                sel.unregister(s)
            except Exception:  # noqa: BLE001
                pass
            s.close()
        sel.close()


REQUEST_CLOSE = (f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: bench\r\nConnection: close\r\n\r\n").encode()


def drive_requests_close(port: int, total: int, conns: int, timeout: float, tls=None) -> float:
    """Send exactly `total` GET / requests, each on a new connection with
    `Connection: close` (as `wrk -H 'Connection: close'`), `conns` at a time.

    Each response must be 200 with the hello body, and the server must close
    the connection after it. Returns the elapsed seconds.
    """
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    deadline = start + timeout
    issued = 0
    done = 0

    def open_one():
        nonlocal issued
        s = _connect(port, 30, tls)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.send(REQUEST_CLOSE)
        s.setblocking(False)
        issued += 1
        sel.register(s, selectors.EVENT_READ, bytearray())

    try:
        for _ in range(min(conns, total)):
            open_one()
        while done < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"load client timed out after {timeout:.0f} s ({done}/{total} done)")
            for key, _ in sel.select(timeout=1.0):
                s, buf = key.fileobj, key.data
                try:
                    chunk = _recv_ready(s)
                except (ssl.SSLEOFError, ssl.SSLZeroReturnError):  # TLS closed without close_notify
                    chunk = b""
                if chunk is None:
                    continue
                if chunk:
                    buf += chunk
                    continue
                parsed = _parse_head(bytes(buf[:8192]))
                if not parsed or len(buf) != parsed[1] + parsed[2]:
                    raise RuntimeError(f"server closed a connection before a full response ({done}/{total} done)")
                status, hend, clen = parsed
                if status != 200 or bytes(buf[hend:hend + clen]) != EXPECTED_BODY:
                    raise RuntimeError(f"bad response: status {status}")
                sel.unregister(s)
                s.close()
                done += 1
                if issued < total:
                    open_one()
        return time.monotonic() - start
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------

_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def _to_us(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"cannot parse wrk duration {text!r}")
    return float(m.group(1)) * _UNITS_US[m.group(2)]


def parse_wrk(out: str) -> dict:
    res: dict = {"errors": {}}
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)
    if not m:
        raise ValueError("no Requests/sec in wrk output:\n" + out)
    res["rps"] = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+\w+),", out, re.M)
    if m:
        res["requests"] = int(m.group(1))
        res["elapsed_s"] = _to_us(m.group(2)) / 1e6
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([0-9.]+\w+)", out, re.M)
        if m:
            res[f"p{pct}_us"] = _to_us(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["errors"].update(dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["errors"]["non_2xx"] = int(m.group(1))
    res["error_total"] = sum(res["errors"].values())
    return res


_BINARY_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4, "PB": 1024 ** 5}


def parse_wrk_bytes(out: str) -> int | None:
    """Bytes wrk read ("N requests in 5.00s, 12.34GB read"; 1024-based units),
    partial responses in flight at the end included; None if absent."""
    m = re.search(r"^\s*\d+ requests in [0-9.]+\w+, ([0-9.]+)([KMGTP]?B) read", out, re.M)
    if not m:
        return None
    return int(float(m.group(1)) * _BINARY_UNITS[m.group(2)])


def connections_per_process(port: int) -> dict[int, int]:
    """Established connections on the server side of ``port``, per owning PID (``ss -tnp``)."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, timeout=10).stdout
    counts: dict[int, int] = {}
    for pid in re.findall(r"pid=(\d+)", out):
        counts[int(pid)] = counts.get(int(pid), 0) + 1
    return counts


def wrk_cmd(port: int, conns: int, duration: float, cpu: str | None, latency: bool = True,
            path: str = "/", script: Path | None = None) -> list[str]:
    cmd = []
    if cpu is not None:
        cmd += ["taskset", "-c", cpu]
    cmd += ["wrk", "-t1", f"-c{conns}", f"-d{duration:g}s", "--timeout", "5s"]
    if latency:
        cmd.append("--latency")
    if script is not None:
        cmd += ["-s", str(script)]
    return cmd + [f"http://{HOST}:{port}{path}"]




# --------------------------------------------------------------------------
# What the wrk-driven tools (hello, output, peers) share around their runs
# --------------------------------------------------------------------------

def add_timing_args(p, duration: int, warmup: int, rounds: int) -> None:
    """-d/--duration, --warmup and -r/--rounds with these defaults (and their BENCH_* variables)."""
    p.add_argument("--duration", "-d", type=int, default=env_default("BENCH_DURATION", duration),
                   help=f"seconds per measured run (env BENCH_DURATION, default {duration})")
    p.add_argument("--warmup", type=int, default=env_default("BENCH_WARMUP", warmup),
                   help=f"seconds of warm-up load before each measured run (env BENCH_WARMUP, default {warmup}; "
                   "0 = none)")
    p.add_argument("--rounds", "-r", type=int, default=env_default("BENCH_ROUNDS", rounds),
                   help=f"interleaved rounds (env BENCH_ROUNDS, default {rounds})")


def parse_choices(p, text: str, choices, what: str) -> list[str]:
    """A comma-separated option as a list; argparse's error (exit 2) for a name not in choices."""
    names = [x.strip() for x in str(text).split(",") if x.strip()]
    unknown = [x for x in names if x not in choices]
    if unknown:
        p.error(f"unknown {what} {unknown}; choose from {list(choices)}")
    return names


def add_common_args(p) -> None:
    """The options every pinned wrk tool has: ours' install, pinning, start-up, output."""
    p.add_argument("--no-install", action="store_true", default=bool(os.environ.get("BENCH_NO_INSTALL")),
                   help="do not (re)install our package; use what .venv-ours has (env BENCH_NO_INSTALL=1)")
    p.add_argument("--ours-src", type=Path, default=os.environ.get("BENCH_OURS_SRC") or None,
                   help="checkout to install as ours (env BENCH_OURS_SRC; default: this repository)")
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset (not comparable!)")
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--start-timeout", type=float, default=60.0, help="seconds to wait for a server to be ready")
    p.add_argument("--out-dir", type=Path, default=RESULTS_DIR)


def start_run(a, prefix: str) -> tuple[str, Path]:
    """Cleanup handlers, wrk and taskset present (unpinned if under 2 CPUs); (stamp, log dir)."""
    install_cleanup_handlers()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    a.out_dir.mkdir(parents=True, exist_ok=True)
    logdir = a.out_dir / f"{prefix}{stamp}-logs"
    logdir.mkdir(parents=True, exist_ok=True)
    ensure_tool("wrk", "wrk")
    if not a.no_pin:
        if not shutil.which("taskset"):
            ensure_tool("taskset", "util-linux")
        ncpu = len(os.sched_getaffinity(0))
        if ncpu < 2:
            log(f"only {ncpu} CPU available: running unpinned")
            a.no_pin = True
    return stamp, logdir


def setup_ours(a, logdir: Path) -> tuple[dict[str, str], str | None]:
    """Install ours if it is a contender: ({"ours": why} if it is skipped, the install note)."""
    ours = [s for s in a.server_list if s == "ours" or s.startswith("ours-")]  # ours-inline too
    if not ours:
        return {}, None
    ok, msg = install_ours(logdir / "setup-ours.log", skip_install=a.no_install, src=a.ours_src)
    if ok:
        log(msg)
        return {}, msg
    log("SKIPPING ours: " + msg)
    return {s: msg for s in ours}, None


def server_python_version(venv: Path) -> str:
    try:
        return subprocess.run([str(venv_python(venv)), "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""
def print_ratio_table(first: str, rows, servers: list[str], results: dict, base: str) -> None:
    """A Markdown table of median req/s per (row, server) from ``results[(row, server)]`` (lists
    of parse_wrk records), each with its ratio to ``base``'s median on that row and its errors."""
    import statistics

    print(f"| {first} | " + " | ".join(servers) + " |")
    print("|---|" + "---|" * len(servers))
    for row in rows:
        base_rps = statistics.median(r["rps"] for r in results[(row, base)])
        cells = []
        for name in servers:
            recs = results[(row, name)]
            rps = statistics.median(r["rps"] for r in recs)
            errs = sum(r["error_total"] for r in recs)
            cells.append(f"{rps:,.0f} ({rps / base_rps:.2f}x){' errors %d' % errs if errs else ''}")
        print(f"| {row} | " + " | ".join(cells) + " |")
