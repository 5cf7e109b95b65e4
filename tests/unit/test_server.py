import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from waitress.server import (
    BaseWSGIServer,
    MultiSocketServer,
    TcpWSGIServer,
    UnixWSGIServer,
    WSGIServer,
    create_server,
)


@pytest.fixture
def servers():
    """Collects servers to close after the test."""
    made = []
    yield made
    for server in made:
        server.close()


@pytest.fixture
def make(servers, app):
    def make(**kw):
        server = create_server(app, **kw)
        servers.append(server)
        return server

    return make


def is_listening(sock):
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


def start_in_thread(target):
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


class TestTcp:
    def test_port_zero_binds_a_free_port(self, make):
        server = make(host="127.0.0.1", port=0)
        assert isinstance(server, TcpWSGIServer)
        port = server.socket.getsockname()[1]
        assert port != 0
        assert server.effective_host == "127.0.0.1"
        assert server.effective_port == str(port)
        assert server.getsockname() == ("127.0.0.1", str(port))

    def test_socket_is_listening_and_connectable(self, make):
        server = make(listen="127.0.0.1:0")
        assert server.accepting
        assert is_listening(server.socket)
        with socket.create_connection(("127.0.0.1", int(server.effective_port)), 1):
            pass  # the kernel completes the handshake from the backlog

    def test_socket_options(self, make):
        server = make(listen="127.0.0.1:0")
        sock = server.socket
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert sock.getblocking() is False

    def test_ipv6_socket_is_v6_only(self, make, ipv6_loopback):
        server = make(listen="[::1]:0")
        assert server.socket.family == socket.AF_INET6
        assert server.socket.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        assert server.effective_host == "::1"

    def test_start_false_binds_without_listening(self, make):
        server = make(listen="127.0.0.1:0", _start=False)
        assert not server.accepting
        assert not is_listening(server.socket)
        assert server.effective_port != "0"

    def test_attributes(self, make, app):
        server = make(listen="127.0.0.1:0", server_name="example.org", threads=2)
        assert server.application is app
        assert server.adj.threads == 2
        assert server.server_name == "example.org"
        assert server.socket.family == socket.AF_INET

    def test_address_in_use(self, make):
        busy = make(listen="127.0.0.1:0")
        with pytest.raises(OSError):
            make(listen=f"127.0.0.1:{busy.effective_port}")

    @pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
    def test_failure_closes_the_sockets_already_bound(self, make):
        busy = make(listen="127.0.0.1:0")
        before = len(os.listdir("/proc/self/fd"))
        with pytest.raises(OSError):
            make(listen=f"127.0.0.1:0 127.0.0.1:0 127.0.0.1:{busy.effective_port}")
        assert len(os.listdir("/proc/self/fd")) == before

    def test_nothing_to_listen_on(self, app):
        with pytest.raises(ValueError, match="no address"):
            create_server(app, listen="")

    def test_close_closes_the_socket(self, app):
        server = create_server(app, listen="127.0.0.1:0")
        sock = server.socket
        server.close()
        assert sock.fileno() == -1
        assert server.socket is None
        assert not server.accepting

    def test_wsgiserver_alias(self, servers):
        assert WSGIServer is TcpWSGIServer
        server = WSGIServer(None, _start=False, host="127.0.0.1", port=0)
        servers.append(server)
        assert server.adj.host == "127.0.0.1"
        assert isinstance(server, BaseWSGIServer)


class TestMultiSocket:
    def test_several_listen_addresses(self, make):
        server = make(listen="127.0.0.1:0 127.0.0.1:0")
        assert isinstance(server, MultiSocketServer)
        assert len(server.effective_listen) == 2
        members = [s for s in server.map.values() if isinstance(s, BaseWSGIServer)]
        assert len(members) == 2
        assert [(s.effective_host, s.effective_port) for s in members] == server.effective_listen

    def test_close_closes_every_socket(self, app):
        server = create_server(app, listen="127.0.0.1:0 127.0.0.1:0")
        socks = [s.socket for s in server.map.values()]
        server.close()
        assert all(sock.fileno() == -1 for sock in socks)
        assert server.map == {}

    def test_print_listen_brackets_ipv6(self, make, caplog, ipv6_loopback):
        server = make(listen="127.0.0.1:0 [::1]:0")
        with caplog.at_level(logging.INFO, logger="waitress"):
            server.print_listen("Serving on http://{}:{}")
        (_, v4port), (_, v6port) = server.effective_listen
        assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
            ("waitress", logging.INFO, f"Serving on http://127.0.0.1:{v4port}"),
            ("waitress", logging.INFO, f"Serving on http://[::1]:{v6port}"),
        ]


def test_print_listen(make, caplog):
    server = make(listen="127.0.0.1:0")
    with caplog.at_level(logging.INFO, logger="waitress"):
        server.print_listen("Serving on http://{}:{}")
    assert caplog.records[0].name == "waitress"
    assert caplog.records[0].getMessage() == (
        f"Serving on http://127.0.0.1:{server.effective_port}"
    )


class TestUnix:
    def test_socket_file_and_permissions(self, make, tmp_path):
        path = str(tmp_path / "app.sock")
        server = make(unix_socket=path, unix_socket_perms="660")
        assert isinstance(server, UnixWSGIServer)
        assert server.socket.family == socket.AF_UNIX
        assert is_listening(server.socket)
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o660
        assert (server.effective_host, server.effective_port) == ("unix", path)

    def test_default_permissions(self, make, tmp_path):
        path = str(tmp_path / "app.sock")
        make(unix_socket=path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    def test_stale_socket_is_replaced(self, make, tmp_path):
        path = str(tmp_path / "app.sock")
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()  # the file stays, as after a crash
        server = make(unix_socket=path)
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
        assert server.socket.getsockname() == path

    def test_regular_file_is_not_removed(self, make, tmp_path):
        path = tmp_path / "data"
        path.write_text("keep me")
        with pytest.raises(OSError):
            make(unix_socket=str(path))
        assert path.read_text() == "keep me"

    def test_close_leaves_the_socket_file(self, app, tmp_path):
        path = str(tmp_path / "app.sock")
        create_server(app, unix_socket=path).close()
        assert os.path.exists(path)

    def test_direct_construction(self, servers, tmp_path):
        server = UnixWSGIServer(
            None, unix_socket=str(tmp_path / "s"), unix_socket_perms="600"
        )
        servers.append(server)
        assert server.sockinfo[0] == socket.AF_UNIX


class TestPreboundSockets:
    def test_one_tcp_socket_is_not_rebound(self, make):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = make(sockets=[sock])
        assert isinstance(server, TcpWSGIServer)
        assert server.socket is sock
        assert server.effective_port == str(sock.getsockname()[1])
        assert is_listening(sock)

    def test_backlog_applies(self, make):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = make(sockets=[sock], backlog="7")
        assert server.adj.backlog == 7
        assert is_listening(sock)

    def test_several_sockets(self, make):
        socks = [socket.socket(), socket.socket()]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        server = make(sockets=socks)
        assert isinstance(server, MultiSocketServer)
        assert [port for _, port in server.effective_listen] == [
            str(sock.getsockname()[1]) for sock in socks
        ]

    def test_unix_sockets(self, make, tmp_path):
        socks = [socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX)]
        for i, sock in enumerate(socks):
            sock.bind(str(tmp_path / f"{i}.sock"))
        server = make(sockets=socks)
        members = [s for s in server.map.values() if isinstance(s, BaseWSGIServer)]
        assert all(isinstance(s, UnixWSGIServer) for s in members)
        assert server.effective_listen[0] == ("unix", str(tmp_path / "0.sock"))

    def test_mixed_socket_types(self, app):
        with socket.socket(socket.AF_UNIX) as unix, socket.socket() as inet:
            with pytest.raises(ValueError, match="may not be mixed"):
                create_server(app, sockets=[unix, inet])


class TestErrors:
    def test_none_application(self):
        with pytest.raises(ValueError, match="app"):
            create_server(None, listen="127.0.0.1:0")

    def test_unknown_keyword(self, app):
        with pytest.raises(ValueError, match="Unknown adjustment 'bogus'"):
            create_server(app, bogus=1)


class TestNothingStarts:
    def test_no_threads_are_started(self, app):
        before = threading.active_count()
        server = create_server(app, listen="127.0.0.1:0 127.0.0.1:0")
        try:
            assert threading.active_count() == before
        finally:
            server.close()
        assert threading.active_count() == before

    def test_native_module_is_not_imported(self):
        code = (
            "import sys, waitress, waitress.runner\n"
            "from waitress.server import create_server\n"
            "create_server(lambda e, s: [], listen='127.0.0.1:0').close()\n"
            "assert 'waitress._native' not in sys.modules\n"
        )
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            env={"PYTHONPATH": os.pathsep.join(sys.path)},
        )


class TestRun:
    def test_engine_gets_listeners_and_options(self, make, fake_native, app):
        server = make(listen="127.0.0.1:0", server_name="example.org")
        thread = start_in_thread(server.run)
        engine = _wait_for_engine(fake_native)
        assert engine.application is app
        assert engine.adj is server.adj
        assert engine.listeners == [
            (server.socket.fileno(), False, "example.org", server.effective_port)
        ]
        assert engine.logger.name == "waitress"
        assert engine.queue_logger.name == "waitress.queue"
        server.close()
        thread.join(5)
        assert not thread.is_alive()

    def test_unix_listener(self, make, fake_native, tmp_path):
        path = str(tmp_path / "app.sock")
        server = make(unix_socket=path)
        thread = start_in_thread(server.run)
        engine = _wait_for_engine(fake_native)
        assert engine.listeners == [
            (server.socket.fileno(), True, "waitress.invalid", path)
        ]
        server.close()
        thread.join(5)

    def test_multi_socket_server_runs_one_engine(self, make, fake_native):
        server = make(listen="127.0.0.1:0 127.0.0.1:0")
        members = list(server.map.values())
        thread = start_in_thread(server.run)
        engine = _wait_for_engine(fake_native)
        assert [listener[0] for listener in engine.listeners] == [
            s.socket.fileno() for s in members
        ]
        assert [listener[3] for listener in engine.listeners] == [
            port for _, port in server.effective_listen
        ]
        server.close()
        thread.join(5)
        assert not thread.is_alive()
        assert len(fake_native.instances) == 1

    def test_close_from_another_thread(self, app, fake_native):
        server = create_server(app, listen="127.0.0.1:0")
        sock = server.socket
        thread = start_in_thread(server.run)
        engine = _wait_for_engine(fake_native)
        server.close()
        thread.join(5)
        assert not thread.is_alive()
        assert engine.stopped.is_set()
        # The engine had let go of the socket before it was closed.
        assert engine.returned
        assert sock.fileno() == -1

    def test_close_before_run(self, app, fake_native):
        server = create_server(app, listen="127.0.0.1:0")
        server.close()
        server.run()
        assert fake_native.instances == []

    def test_not_listening_server_does_not_run(self, make, fake_native):
        make(listen="127.0.0.1:0", _start=False).run()
        assert fake_native.instances == []

    def test_keyboard_interrupt_ends_run(self, make, fake_native, monkeypatch):
        class InterruptedEngine(fake_native):
            def run(self):
                raise KeyboardInterrupt

        monkeypatch.setattr(sys.modules["waitress._native"], "Engine", InterruptedEngine)
        server = make(listen="127.0.0.1:0")
        server.run()  # returns normally
        assert server.socket is not None  # as in Waitress: still open

    def test_multi_socket_server_closes_after_exit(self, app, fake_native, monkeypatch):
        class ExitingEngine(fake_native):
            def run(self):
                raise SystemExit(3)

        monkeypatch.setattr(sys.modules["waitress._native"], "Engine", ExitingEngine)
        server = create_server(app, listen="127.0.0.1:0 127.0.0.1:0")
        socks = [s.socket for s in server.map.values()]
        server.run()
        assert all(sock.fileno() == -1 for sock in socks)

    def test_sigterm_stops_run_in_main_thread(self, make, fake_native):
        assert threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            server = make(listen="127.0.0.1:0")

            def send_sigterm():
                _wait_for_engine(fake_native)
                os.kill(os.getpid(), signal.SIGTERM)

            start_in_thread(send_sigterm)
            server.run()  # returns normally
            assert fake_native.instances[0].returned
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        finally:
            signal.signal(signal.SIGTERM, previous)

    def test_program_sigterm_handler_is_kept(self, make, fake_native):
        def handler(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, handler)
        try:
            server = make(listen="127.0.0.1:0")
            seen = []

            def send_sigterm():
                _wait_for_engine(fake_native)
                seen.append(signal.getsignal(signal.SIGTERM))
                os.kill(os.getpid(), signal.SIGTERM)

            start_in_thread(send_sigterm)
            server.run()
            assert seen == [handler]
            assert signal.getsignal(signal.SIGTERM) is handler
        finally:
            signal.signal(signal.SIGTERM, previous)


def _wait_for_engine(fake_native, timeout=5.0):
    """Return the first engine once its run() has started."""
    deadline = time.monotonic() + timeout
    while not fake_native.instances:
        assert time.monotonic() < deadline, "the engine was never created"
        time.sleep(0.005)
    engine = fake_native.instances[0]
    assert engine.started.wait(timeout)
    return engine
