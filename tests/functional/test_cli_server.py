"""The command line end to end: ``python -m waitress`` and the ``waitress-serve`` console
script start a real server that serves, and stop with exit code 0 on SIGTERM.

Commands run with the interpreter running pytest (so the package under test) and with
``tests/`` as the working directory, from which ``waitress-serve`` imports ``MODULE:OBJECT``
(Waitress appends the current directory to sys.path). Error cases are compared with real
Waitress 3.0.2's ``waitress-serve`` when a reference interpreter is available.
"""

import json
import os
import stat
import subprocess
import sys

import pytest

from functional.command_server import BIN_DIR, TESTS_DIR, CommandServer, can_connect, free_port, http_get
from functional.reference import reference_python

APP = "apps.env_echo:app"
WAITRESS_SERVE = os.path.join(BIN_DIR, "waitress-serve")

ENTRY_POINTS = {
    "python-m": [sys.executable, "-m", "waitress"],
    "waitress-serve": [WAITRESS_SERVE],
}


@pytest.fixture
def command(tmp_path):
    started = []

    def start(argv, **kw):
        server = CommandServer(argv, str(tmp_path), **kw).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def get_env(address, path="/x", headers=()):
    status, hdrs, body = http_get(address, path, headers)
    assert status == 200, (status, body[:300])
    return hdrs, json.loads(body)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_serves_and_stops_on_sigterm(command, entry):
    port = free_port()
    server = command(ENTRY_POINTS[entry] + ["--listen=127.0.0.1:%d" % port, APP]).wait_listening(
        [("127.0.0.1", port)]
    )
    hdrs, data = get_env(("127.0.0.1", port), "/hello?a=1")
    env = data["environ"]
    assert hdrs["server"] == "waitress"
    assert env["PATH_INFO"] == "/hello"
    assert env["QUERY_STRING"] == "a=1"
    assert env["SERVER_PORT"] == str(port)
    assert data["pid"] == server.proc.pid  # the app runs in the command's own process
    err = server.wait_for_stderr("Serving on")
    assert "INFO:waitress:Serving on http://127.0.0.1:%d" % port in err, server.output()
    assert server.stop() == 0, server.output()
    assert not can_connect(("127.0.0.1", port))
    assert "Traceback" not in server.stderr(), server.output()


def test_waitress_serve_host_port_and_options(command):
    port = free_port()
    server = command([WAITRESS_SERVE, "--host=127.0.0.1", "--port=%d" % port, "--threads=2",
                      "--ident=cli-ident", "--url-prefix=/cli/", "--url-scheme=https",
                      "--no-expose-tracebacks", "--connection-limit=10", APP])
    server.wait_listening([("127.0.0.1", port)])
    hdrs, data = get_env(("127.0.0.1", port), "/cli/page")
    env = data["environ"]
    assert hdrs["server"] == "cli-ident"
    assert env["SERVER_SOFTWARE"] == "cli-ident"
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/cli", "/page")
    assert env["wsgi.url_scheme"] == "https"
    assert server.stop() == 0


def test_call_treats_the_object_as_a_factory(command):
    port = free_port()
    server = command([sys.executable, "-m", "waitress", "--call", "--listen=127.0.0.1:%d" % port,
                      "apps.env_echo:factory"])
    server.wait_listening([("127.0.0.1", port)])
    _, data = get_env(("127.0.0.1", port))
    assert data["config"] == {"global": {}, "local": {}}
    assert server.stop() == 0


def test_several_listen_options(command):
    ports = [free_port(), free_port()]
    while ports[0] == ports[1]:
        ports[1] = free_port()
    server = command([WAITRESS_SERVE] + ["--listen=127.0.0.1:%d" % p for p in ports] + [APP])
    server.wait_listening([("127.0.0.1", p) for p in ports])
    pids = set()
    for p in ports:
        _, data = get_env(("127.0.0.1", p))
        assert data["environ"]["SERVER_PORT"] == str(p)
        pids.add(data["pid"])
    assert pids == {server.proc.pid}
    err = server.wait_for_stderr("Serving on http://127.0.0.1:%d" % ports[1])
    for p in ports:
        assert "INFO:waitress:Serving on http://127.0.0.1:%d" % p in err
    assert server.stop() == 0
    for p in ports:
        assert not can_connect(("127.0.0.1", p))


@pytest.mark.parametrize("perms, mode", [("660", 0o660), ("600", 0o600), (None, 0o600)])
def test_unix_socket_with_perms(command, tmp_path, perms, mode):
    path = os.path.join(str(tmp_path), "cli.sock")
    argv = [WAITRESS_SERVE, "--unix-socket=%s" % path]
    if perms is not None:
        argv.append("--unix-socket-perms=%s" % perms)
    server = command(argv + [APP]).wait_listening([path])
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == mode
    _, data = get_env(path, "/over/unix")
    env = data["environ"]
    assert env["PATH_INFO"] == "/over/unix"
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("localhost", "None")
    assert env["SERVER_PORT"] == path
    err = server.wait_for_stderr("Serving on")
    assert "INFO:waitress:Serving on http://unix:%s" % path in err, server.output()
    assert server.stop() == 0


# -- errors ---------------------------------------------------------------------------------------

BAD = [
    ("bad-option", ["--no-such-option", APP], "Error: option --no-such-option not recognized"),
    ("missing-value", ["--port"], "Error: option --port requires argument"),
    ("two-apps", [APP, APP], "Error: Specify one application only"),
    ("no-app", [], "Error: Specify one application only"),
    ("import-error", ["no_such_module_xyz:app"], "Error: No module named 'no_such_module_xyz'"),
    ("bad-attribute", ["apps.env_echo:no_such_attr"], None),
]


def run_command(argv, cwd=TESTS_DIR, timeout=20):
    out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    return out.returncode, out.stdout, out.stderr


@pytest.mark.parametrize("case, args, first_line", [pytest.param(*b, id=b[0]) for b in BAD])
def test_bad_command_line_exits_with_waitress_message(case, args, first_line):
    code, out, err = run_command([WAITRESS_SERVE] + args)
    assert code == 1, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    if first_line is not None:
        assert lines[0] == first_line, err
    else:
        assert lines[0].startswith("Error: "), err
    assert lines[1] == ""
    assert lines[2] == "Usage:"
    assert "    waitress-serve [OPTS] MODULE:OBJECT" in lines
    if case in ("import-error", "bad-attribute"):
        assert "There was an exception (%s) importing your module." % (
            "ModuleNotFoundError" if case == "import-error" else "AttributeError") in err
        assert "It had these arguments: " in lines
    ref = reference_python()
    if ref is not None:
        ref_serve = os.path.join(os.path.dirname(ref), "waitress-serve")
        rcode, rout, rerr = run_command([ref_serve] + args)
        assert rcode == code
        assert rerr.splitlines()[0] == lines[0]
        tail = rerr.split("There was an exception", 1)[1:]
        assert err.split("There was an exception", 1)[1:] == tail


def test_python_m_waitress_bad_option():
    code, out, err = run_command([sys.executable, "-m", "waitress", "--no-such-option", APP])
    assert err.startswith("Error: option --no-such-option not recognized\n\nUsage:\n\n    __main__.py [OPTS] MODULE:OBJECT")
    # Waitress 3.0.2's __main__ ignores run()'s status and exits 0 here; this package exits 1.
    assert code == 1


def test_bad_option_value_fails_at_startup():
    code, out, err = run_command([WAITRESS_SERVE, "--threads=many", APP])
    assert code == 1
    assert "ValueError" in err


def test_help():
    code, out, err = run_command([WAITRESS_SERVE, "--help"])
    assert code == 0
    assert err == ""
    assert out.startswith("Usage:\n\n    waitress-serve [OPTS] MODULE:OBJECT\n")
    for option in ("--listen=ip:port", "--unix-socket=PATH", "--unix-socket-perms=PERMS", "--call",
                   "--threads=INT", "--[no-]log-socket-errors"):
        assert option in out, option
