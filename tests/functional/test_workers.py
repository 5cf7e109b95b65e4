"""Worker processes under the supervisor (``--workers``, supervisor.py), end to end.

Real ``waitress-serve`` processes on real sockets: N workers serve from different pids,
``workers=1`` stays one process, a worker killed with SIGKILL under load is replaced without
failing requests on the others, SIGHUP under load serves the rewritten module with no failed
request, SIGTERM under load lets every request in flight finish before the supervisor exits,
``max_requests`` recycles workers without a failed request, a worker whose app holds the GIL is
killed after ``worker_timeout``, and a module that does not import is reported once with exit
status 1.
"""

import os
import signal
import time

import pytest

from functional.workers_harness import Load, Supervised, pid_alive, write_app

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers need os.fork")


@pytest.fixture
def supervised(tmp_path):
    started = []

    def start(args, version="v1", module="wapp:app", write=True):
        if write:
            write_app(str(tmp_path), version)
        server = Supervised(tmp_path, args, module).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def distinct_pids(server, want, tries=400):
    seen = set()
    for _ in range(tries):
        status, data = server.get("/")
        assert status == 200
        seen.add(data["pid"])
        if len(seen) >= want:
            break
    return seen


def test_workers_serve_from_different_processes(supervised):
    server = supervised(["--workers=3"])
    pids = set(server.wait_serving(3))
    assert len(pids) == 3
    assert server.proc.pid not in pids
    # Fresh connections land on more than one worker, and only on the workers.
    seen = distinct_pids(server, 2)
    assert len(seen) >= 2 and seen <= pids
    # Each worker's records say which worker wrote them.
    status, _ = server.get("/error")
    assert status == 500
    text = server.wait_for(lambda t: "Exception while serving /error" in t, what="error log")
    line = next(l for l in text.splitlines() if "Exception while serving /error" in l)
    number, pid = line.split("[worker ", 1)[1].split("]", 1)[0].split(" pid ")
    assert int(pid) in pids and 1 <= int(number) <= 3
    assert "[supervisor pid %d]" % server.proc.pid in text
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0


def test_one_worker_is_one_process(supervised):
    server = supervised([])
    server.wait_for(lambda t: "Serving on" in t, what="listening")
    status, data = server.get("/")
    assert status == 200 and data["pid"] == server.proc.pid
    assert "supervisor" not in server.log() and "worker" not in server.log()
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0


def test_sigkill_of_a_worker_under_load(supervised):
    server = supervised(["--workers=2"])
    first = server.wait_serving(2)
    with Load(server.port, clients=6) as load:
        load.wait_count(300)
        victim = first[0]
        os.kill(victim, signal.SIGKILL)
        server.wait_for(
            lambda t: "(pid %d) was killed by signal 9 (SIGKILL); starting another" % victim in t,
            what="the death logged",
        )
        replacement = server.wait_serving(3)[2]
        done = load.count()
        load.wait_count(done + 300)
    # Only connections that were on the killed worker may fail.
    assert load.failures, "no client was on the killed worker"
    assert {pid for pid, _ in load.failures} <= {victim, None}, load.failures
    assert all(status == 200 for _, status, _ in load.results)
    assert replacement in {pid for pid, _, _ in load.results} or replacement in distinct_pids(
        server, 2
    )


def test_sighup_under_load_serves_new_code_without_a_failure(supervised, tmp_path):
    server = supervised(["--workers=2"], version="v1")
    old = set(server.wait_serving(2))
    with Load(server.port, clients=6) as load:
        load.wait_count(300)
        write_app(str(tmp_path), "v2-changed")
        server.signal(signal.SIGHUP)
        new = set(server.wait_serving(4)[2:])
        server.wait_for(
            lambda t: all("(pid %d) exited with status 0" % pid in t for pid in old),
            what="old workers drained",
        )
        done = load.count()
        load.wait_count(done + 300)
    assert load.failures == []
    assert all(status == 200 for _, status, _ in load.results)
    versions = [version for _, _, version in load.results]
    assert versions[0] == "v1" and versions[-1] == "v2-changed"
    assert {pid for pid, _, _ in load.results[-50:]} <= new
    assert not any(pid_alive(pid) for pid in old)


def test_sigterm_under_load_finishes_requests_in_flight(supervised, tmp_path):
    server = supervised(["--workers=2", "--threads=8"])
    workers = server.wait_serving(2)
    with Load(server.port, clients=8, target="/slow?s=1.0&id={id}") as load:
        time.sleep(0.5)  # every client has a request in an app now
        server.signal(signal.SIGTERM)
        assert server.wait_exit(60) == 0
        load.stop()
    # Every request that reached an app got its response.
    with open(os.path.join(str(tmp_path), "entered.txt")) as f:
        entered = set(f.read().split())
    assert len(entered) >= 8
    assert entered <= load.answered, entered - load.answered
    assert all(status == 200 for _, status, _ in load.results)
    # Workers exited before the supervisor did.
    assert not any(pid_alive(pid) for pid in workers)
    text = server.log()
    assert "Shutting down: draining 2 worker(s)" in text
    assert text.count("exited with status 0") == 2


def test_max_requests_recycles_without_a_failure(supervised):
    server = supervised(["--workers=2", "--max-requests=50", "--max-requests-jitter=10"])
    first = set(server.wait_serving(2))
    with Load(server.port, clients=4) as load:
        load.wait_count(200)
        server.wait_for(
            lambda t: all("(pid %d) exited with status 0" % pid in t for pid in first),
            what="both first workers recycled",
        )
        done = load.count()
        load.wait_count(done + 300)
    assert load.failures == []
    assert all(status == 200 for _, status, _ in load.results)
    assert {pid for pid, _, _ in load.results[-300:]}.isdisjoint(first)
    assert "served max_requests; replacing it" in server.log()


def test_worker_holding_the_gil_is_replaced_after_worker_timeout(supervised):
    server = supervised(["--workers=2", "--worker-timeout=2"])
    server.wait_serving(2)
    sock_conn = __import__("socket").create_connection(("127.0.0.1", server.port), timeout=30)
    from functional.harness import Connection, build_request

    with Connection(sock_conn) as conn:
        conn.send(build_request("GET", "/hang"))
        started = time.monotonic()
        text = server.wait_for(
            lambda t: "sent no heartbeat for 2 s (worker_timeout): killing it" in t,
            timeout=20,
            what="the hung worker killed",
        )
        waited = time.monotonic() - started
        # The killed worker's connection closes without a response.
        assert conn.read_until_close() == b""
    assert waited >= 1.5
    hung = int(text.split("sent no heartbeat")[0].rsplit("(pid ", 1)[1].split(")")[0])
    server.wait_for(
        lambda t: "(pid %d) was killed by signal 9 (SIGKILL); starting another" % hung in t,
        what="the hung worker reaped",
    )
    assert not pid_alive(hung)
    server.wait_serving(3)
    assert len(distinct_pids(server, 2)) == 2


def test_app_that_does_not_import_is_reported_once(supervised, tmp_path):
    with open(os.path.join(str(tmp_path), "broken.py"), "w") as f:
        f.write("raise ImportError('no such thing as broken_dependency')\n")
    server = supervised(["--workers=3"], module="broken:app")
    assert server.wait_exit(30) == 1
    text = server.log()
    assert text.count("could not import the application broken:app") == 1, text
    assert text.count("ImportError: no such thing as broken_dependency") == 1, text
    assert "Stopping: the application could not be imported" in text


def test_workers_dying_at_start_give_up(supervised, tmp_path):
    with open(os.path.join(str(tmp_path), "dies.py"), "w") as f:
        f.write("import os\nos._exit(3)\n")
    server = supervised(["--workers=2"], module="dies:app")
    assert server.wait_exit(30) == 1
    text = server.log()
    assert "exited with status 3 before serving; starting another in" in text
    assert "Stopping: every worker exited before serving" in text


def test_reload_with_code_that_does_not_import_keeps_the_old_workers(supervised, tmp_path):
    server = supervised(["--workers=2"])
    old = set(server.wait_serving(2))
    with open(os.path.join(str(tmp_path), "wapp.py"), "a") as f:
        f.write("\nraise SyntaxError('half-written deploy')\n")
    server.signal(signal.SIGHUP)
    server.wait_for(lambda t: "The reload is abandoned" in t, what="the reload abandoned")
    assert server.log().count("SyntaxError: half-written deploy") == 1
    assert distinct_pids(server, 2) == old
    assert server.proc.poll() is None
    # Once the code is whole again, the next SIGHUP reloads it.
    write_app(str(tmp_path), "v2")
    server.signal(signal.SIGHUP)
    server.wait_for(
        lambda t: all("(pid %d) exited with status 0" % pid in t for pid in old), what="old drained"
    )
    status, data = server.get("/")
    assert status == 200 and data["version"] == "v2" and data["pid"] not in old


def test_a_replacement_that_does_not_import_leaves_the_others_serving(supervised, tmp_path):
    server = supervised(["--workers=2"])
    first = server.wait_serving(2)
    with open(os.path.join(str(tmp_path), "wapp.py"), "a") as f:
        f.write("\nraise SyntaxError('half-written deploy')\n")
    os.kill(first[0], signal.SIGKILL)
    server.wait_for(
        lambda t: "Serving with 1 worker(s) until a SIGHUP brings code that imports" in t,
        what="the failed replacement reported",
    )
    assert server.proc.poll() is None
    for _ in range(10):
        status, data = server.get("/")
        assert status == 200 and data["pid"] == first[1]


def test_sigttin_and_sigttou_change_the_worker_count(supervised):
    server = supervised(["--workers=2"])
    server.wait_serving(2)
    server.signal(signal.SIGTTIN)
    third = server.wait_serving(3)[2]
    assert third in distinct_pids(server, 3)
    server.signal(signal.SIGTTOU)
    server.wait_for(lambda t: "(pid %d) exited with status 0" % third in t, what="one drained")
    assert len(distinct_pids(server, 3, tries=100)) == 2


def unix_get_pid(path):
    from functional.harness import Connection, build_request
    import json
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    with Connection(sock) as conn:
        conn.send(build_request("GET", "/"))
        resp = conn.read_response()
    assert resp.status == 200
    return json.loads(resp.body)["pid"]


def test_unix_socket_and_its_permissions_with_workers(supervised, tmp_path):
    path = os.path.join(str(tmp_path), "s.sock")
    server = supervised(["--workers=2", "--unix-socket=" + path, "--unix-socket-perms=660"])
    pids = set(server.wait_serving(2))
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o660)
    seen = set()
    for _ in range(400):
        seen.add(unix_get_pid(path))
        if len(seen) == 2:
            break
    assert seen == pids


SOCKET_ACTIVATED = """
import logging, socket, sys
sys.path.insert(0, ".")
logging.basicConfig(level=logging.INFO)
from waitress import serve
from wapp import app
# As systemd passes it (there as descriptor 3; here the number is argv[1]).
serve(app, sockets=[socket.socket(fileno=int(sys.argv[1]))], workers=2)
"""


def test_prebound_socket_as_systemd_passes_it(tmp_path):
    """Workers serve a socket bound by someone else (systemd socket activation), and a
    connection made while no server runs is answered by the next one: nothing is refused."""
    import socket
    import sys

    from functional.harness import Connection, build_request

    write_app(str(tmp_path), "v1")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    fd = listener.fileno()

    def start():
        return Supervised(
            tmp_path, [], argv=[sys.executable, "-c", SOCKET_ACTIVATED, str(fd)], pass_fds=(fd,), port=port
        ).start()

    try:
        first = start()
        try:
            pids = set(first.wait_serving(2))
            assert set(distinct_pids(first, 2)) == pids
            first.signal(signal.SIGTERM)
            assert first.wait_exit() == 0
        finally:
            first.stop()
        # No server now: the connection waits in the socket's queue.
        waiting = Connection(socket.create_connection(("127.0.0.1", port), timeout=20))
        waiting.send(build_request("GET", "/"))
        second = start()
        try:
            resp = waiting.read_response()
            assert resp.status == 200
            assert resp.json()["pid"] not in pids
        finally:
            waiting.close()
            second.stop()
    finally:
        listener.close()


def test_preload_imports_once_so_sighup_restarts_the_same_code(supervised, tmp_path):
    server = supervised(["--workers=2", "--preload"], version="v1")
    old = set(server.wait_serving(2))
    write_app(str(tmp_path), "v2")
    server.signal(signal.SIGHUP)
    new = set(server.wait_serving(4)[2:])
    server.wait_for(
        lambda t: all("(pid %d) exited with status 0" % pid in t for pid in old), what="old drained"
    )
    for _ in range(20):
        status, data = server.get("/")
        assert status == 200 and data["pid"] in new and data["version"] == "v1"


PASTE_SCRIPT = """
import logging, sys
sys.path.insert(0, ".")
logging.basicConfig(level=logging.INFO)
from paste.deploy import loadapp, loadserver
app = loadapp("config:%(ini)s")
sys.exit(loadserver("config:%(ini)s")(app))
"""


def test_paste_ini_workers(tmp_path):
    pytest.importorskip("paste.deploy")
    import sys

    from functional.workers_harness import free_port

    write_app(str(tmp_path), "v1")
    port = free_port()
    ini = os.path.join(str(tmp_path), "app.ini")
    with open(ini, "w") as f:
        f.write(
            "[app:main]\nuse = call:wapp:make\n\n[server:main]\nuse = egg:waitress#main\n"
            "listen = 127.0.0.1:%d\nworkers = 2\nthreads = 2\nmax_requests = 1000\n" % port
        )
    server = Supervised(
        tmp_path, [], argv=[sys.executable, "-c", PASTE_SCRIPT % {"ini": ini}], port=port
    ).start()
    try:
        pids = set(server.wait_serving(2))
        assert distinct_pids(server, 2) == pids
        server.signal(signal.SIGTERM)
        assert server.wait_exit() == 0
    finally:
        server.stop()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="max_worker_rss reads /proc")
def test_max_worker_rss_replaces_a_worker_that_grew_without_a_failure(supervised):
    server = supervised(["--workers=2", "--max-worker-rss=50"])
    first = server.wait_serving(2)
    with Load(server.port, clients=4) as load:
        load.wait_count(100)
        status, data = server.get("/grow")
        assert status == 200
        grown = data["pid"]
        text = server.wait_for(
            lambda t: "(pid %d) exited with status 0" % grown in t, what="the grown worker replaced"
        )
        done = load.count()
        load.wait_count(done + 200)
    assert "(pid %d) uses" % grown in text and "over max_worker_rss (50 MiB); replacing it" in text
    assert load.failures == []
    assert all(status == 200 for _, status, _ in load.results)
    other = next(pid for pid in first if pid != grown)
    assert pid_alive(other)


@pytest.mark.skipif(not __import__("shutil").which("wrk"), reason="wrk is not installed")
def test_sighup_under_wrk_has_no_socket_errors_and_no_non_2xx(supervised, tmp_path):
    import subprocess

    server = supervised(["--workers=2"], version="v1")
    old = set(server.wait_serving(2))
    wrk = subprocess.Popen(
        ["wrk", "-t1", "-c16", "-d4s", "--timeout", "5s", "http://127.0.0.1:%d/" % server.port],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(1.0)
        write_app(str(tmp_path), "v2")
        server.signal(signal.SIGHUP)
        server.wait_serving(4)
        time.sleep(0.5)
        server.signal(signal.SIGHUP)
        out, _ = wrk.communicate(timeout=30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    assert "requests in" in out, out
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
    assert server.log().count("Reloading:") == 2
    status, data = server.get("/")
    assert status == 200 and data["version"] == "v2" and data["pid"] not in old


def _keep_alive_pids(port, count):
    """Open ``count`` keep-alive connections one after another, one request each, and keep them
    open: which worker's pid answered on each (and the connections, to close)."""
    import http.client
    import json

    conns, pids = [], []
    for _ in range(count):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200
        pids.append(json.loads(resp.read())["pid"])
        conns.append(conn)
    return conns, pids


def _wait_stopped(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
        time.sleep(0.01)
    raise AssertionError("worker %d did not stop" % pid)


def test_keep_alive_connections_are_balanced_and_a_stuck_worker_delays_no_accept(supervised):
    server = supervised(["--workers=2"])
    first, second = server.wait_serving(2)
    # Opened one after another against two idle workers, the kernel would hand most of them to
    # whichever worker wakes first; the workers' balancing keeps them within a few of each other.
    conns, pids = _keep_alive_pids(server.port, 12)
    try:
        per_worker = sorted(pids.count(pid) for pid in (first, second))
        assert per_worker[0] >= 4, per_worker
    finally:
        for conn in conns:
            conn.close()
    # A worker whose loop does not run (stopped) still looks least loaded to the other, which
    # pauses accepting only briefly each time: every connection is still accepted and served.
    os.kill(first, signal.SIGSTOP)
    try:
        # The signal is delivered asynchronously: connect only once the worker has stopped, or
        # it could still accept the first connection and then hold it unanswered.
        _wait_stopped(first)
        # (A connection left waiting for the stopped worker would fail on the 10 s timeout.)
        conns, pids = _keep_alive_pids(server.port, 8)
        for conn in conns:
            conn.close()
        assert set(pids) == {second}
    finally:
        os.kill(first, signal.SIGCONT)
    status, _ = server.get("/")
    assert status == 200
