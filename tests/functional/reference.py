"""Real Waitress 3.0.2, for side-by-side comparisons with the package under test.

``reference_python()`` is an interpreter that has real Waitress 3.0.2 installed: the one named
by ``$WAITRESS_REF_PYTHON``, else ``/tmp/venv-ref2/bin/python``; when neither exists it creates
that venv (``python3 -m venv`` + ``pip install waitress==3.0.2``, bounded in time). It returns
None, with the reason in ``reference_problem()``, if none can be had; tests then skip.

``run_reference_cases`` runs ``proxy_runner.py`` with it; ``ReferenceServerProcess`` is the
harness's ``ServerProcess`` launched with it (same launcher, same apps), so one scenario can
be run against both servers.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from functional.harness import ServerProcess

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_VENV = "/tmp/venv-ref2"
INSTALL_TIMEOUT = 90

_state = {"checked": False, "python": None, "problem": None}


def _is_reference(python):
    try:
        out = subprocess.run(
            [python, "-c", "import importlib.metadata as m, waitress, os;"
             "print(m.version('waitress'), os.path.dirname(waitress.__file__))"],
            capture_output=True, text=True, timeout=30, cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if out.returncode != 0:
        return False
    version, _, where = out.stdout.strip().partition(" ")
    # The real package has its pure-Python wasyncore; ours has a _native module instead.
    return version == "3.0.2" and os.path.exists(os.path.join(where, "wasyncore.py"))


def _create_venv(path):
    base = shutil.which("python3") or sys.executable
    try:
        subprocess.run([base, "-m", "venv", path], check=True, capture_output=True,
                       timeout=INSTALL_TIMEOUT)
        # Short network timeouts: offline, the tests that need it skip instead of waiting.
        subprocess.run([os.path.join(path, "bin", "python"), "-m", "pip", "install", "-q",
                        "--timeout", "15", "--retries", "1", "waitress==3.0.2"], check=True,
                       capture_output=True, timeout=INSTALL_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(path, ignore_errors=True)
        return "could not create %s with waitress==3.0.2: %s" % (path, exc)
    return None


def reference_python():
    if _state["checked"]:
        return _state["python"]
    _state["checked"] = True
    explicit = os.environ.get("WAITRESS_REF_PYTHON")
    if explicit:
        if _is_reference(explicit):
            _state["python"] = explicit
        else:
            _state["problem"] = "$WAITRESS_REF_PYTHON=%s has no real waitress 3.0.2" % explicit
        return _state["python"]
    python = os.path.join(DEFAULT_VENV, "bin", "python")
    if not os.path.exists(python):
        problem = _create_venv(DEFAULT_VENV)
        if problem:
            _state["problem"] = problem
            return None
    if _is_reference(python):
        _state["python"] = python
    else:
        _state["problem"] = "%s has no real waitress 3.0.2" % python
    return _state["python"]


def reference_problem():
    return _state["problem"] or "no reference Waitress"


def run_reference_cases(cases):
    """Results of ``proxy_runner.run_cases(cases)`` under real Waitress 3.0.2."""
    python = reference_python()
    assert python is not None, reference_problem()
    out = subprocess.run(
        [python, os.path.join(HERE, "proxy_runner.py")],
        input=json.dumps(cases), capture_output=True, text=True, timeout=60, cwd="/",
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


class ReferenceServerProcess(ServerProcess):
    """The harness's server subprocess, but run by the reference interpreter."""

    def start(self):
        python = reference_python()
        assert python is not None, reference_problem()
        real = sys.executable
        sys.executable = python
        try:
            return super().start()
        finally:
            sys.executable = real


def start_reference_server(app_spec, transport="tcp", **options):
    """A real-Waitress server subprocess (stop it with ``.stop()``); its work dir is removed
    by ``.stop()`` too."""
    workdir = tempfile.mkdtemp(prefix="wr-")
    server = ReferenceServerProcess(app_spec, options, transport, workdir)
    stop = server.stop

    def stop_and_clean(timeout=None):
        try:
            return stop() if timeout is None else stop(timeout)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    server.stop = stop_and_clean
    return server.start()
