"""Fixtures for the functional tests.

``server_factory`` starts servers in subprocesses (shared per configuration, all stopped with
SIGTERM at the end of the session); ``transport`` parametrizes a test over TCP (127.0.0.1,
port 0) and a Unix socket; ``server`` is the shared default-app server for that transport;
``private_server`` starts a server the test owns, stopped when the test ends.
"""

import pytest

from functional.harness import DEFAULT_APP, ServerFactory


@pytest.fixture(scope="session")
def server_factory():
    factory = ServerFactory()
    yield factory
    factory.stop_all()


@pytest.fixture(params=["tcp", "unix"])
def transport(request):
    return request.param


@pytest.fixture
def server(server_factory, transport):
    return server_factory.get(DEFAULT_APP, transport)


@pytest.fixture
def private_server(server_factory):
    started = []

    def start(app=DEFAULT_APP, transport="tcp", **options):
        s = server_factory.start(app, transport, **options)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
