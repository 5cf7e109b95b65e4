"""Shared fixtures for the unit tests of the pure-Python API.

None of these tests needs the native engine: the ones that call ``run()``
install ``FakeNative`` in its place.
"""
import socket
import sys
import threading
import types

import pytest

import waitress


def hello_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def _can_bind(family, host):
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
    except OSError:
        return False
    return True


@pytest.fixture
def ipv6_loopback():
    """Skip the test where ::1 cannot be bound."""
    if not _can_bind(socket.AF_INET6, "::1"):
        pytest.skip("no IPv6 loopback")


class FakeEngine:
    """Stands in for ``waitress._native.Engine``: records what it was given
    and serves (sleeps) until stopped or a signal handler raises."""

    instances = []

    def __init__(self, application, listeners, adj, logger, queue_logger):
        self.application = application
        self.listeners = list(listeners)
        self.adj = adj
        self.logger = logger
        self.queue_logger = queue_logger
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.returned = False
        FakeEngine.instances.append(self)

    def run(self):
        self.started.set()
        try:
            # Short sleeps, so a signal handler gets to run in between, like
            # the real engine's periodic PyErr_CheckSignals().
            while not self.stopped.wait(0.01):
                pass
        finally:
            self.returned = True

    def stop(self):
        self.stopped.set()


@pytest.fixture
def fake_native(monkeypatch):
    """Replace the native module with one whose Engine is ``FakeEngine``."""
    FakeEngine.instances = []
    module = types.ModuleType("waitress._native")
    module.Engine = FakeEngine
    module.__version__ = "fake"
    monkeypatch.setitem(sys.modules, "waitress._native", module)
    monkeypatch.setattr(waitress, "_native", module, raising=False)
    return FakeEngine


@pytest.fixture
def app():
    return hello_app
